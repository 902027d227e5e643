"""``sandbox rules render``: write ``docs/rules.md`` from the register of rules."""

from __future__ import annotations

import typer

from sandbox.rule_register import DOCUMENT, write

rules_app = typer.Typer(no_args_is_help=True)


@rules_app.command("render")
def render() -> None:
    """Write docs/rules.md (Chinese and English) from sandbox/refusal_catalogue.py."""
    changed = write()
    typer.echo(f"{DOCUMENT}: {'written' if changed else 'up to date'}")
