"""``sandbox``: serve the platform, seed the demo, publish, manage agreements, check the record."""

from __future__ import annotations

from pathlib import Path

import typer

from sandbox.cli.agreement import agreement_app
from sandbox.cli.catalog import catalog_app
from sandbox.cli.serve import register as register_serve

app = typer.Typer(no_args_is_help=True, help=__doc__)
app.add_typer(catalog_app, name="catalog", help="Publish and list datasets.")
app.add_typer(agreement_app, name="agreement", help="Import, export and manage agreements.")
register_serve(app)


def _optional(module: str, attr: str, name: str, help_text: str) -> None:
    """Sub-apps whose modules live beside this one (guard, export, release, audit)."""
    import importlib

    sub = getattr(importlib.import_module(f"sandbox.cli.{module}"), attr)
    app.add_typer(sub, name=name, help=help_text)


for _module, _attr, _name, _help in (
    ("guard", "guard_app", "guard", "Check or run a query against an agreement."),
    ("export", "export_app", "export", "Differentially private releases."),
    ("release", "release_app", "release", "Verify signed release bundles."),
    ("audit", "audit_app", "audit", "Verify and export the audit record."),
):
    if (Path(__file__).parent / f"{_module}.py").exists():
        _optional(_module, _attr, _name, _help)
