"""``sandbox catalog``: publish a dataset version from its entry YAML, list the catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sandbox.catalog.service import latest_version, public_datasets, publish_dataset
from sandbox.cli.common import AS_OPTION, acting_user, refusals_exit, unit_of_work
from sandbox.contracts import load_catalog_entry
from sandbox.errors import ContractError
from sandbox.settings import get_settings

catalog_app = typer.Typer(no_args_is_help=True)


@catalog_app.command("publish")
def publish(
    entry: Path = typer.Argument(..., help="Catalogue entry YAML."),
    data: Path | None = typer.Option(None, help="Data file; default: the entry's source."),
    basis: str = typer.Option("", help="Desensitisation/consent reference for a class change."),
    as_user: str = AS_OPTION,
) -> None:
    """Publish a new version of a dataset (quality report printed as JSON)."""
    with refusals_exit():
        parsed = load_catalog_entry(entry)
        source = data or parsed.source_path()
        if source is None:
            raise ContractError(f"{entry}: source: no data file given", rule="catalog-entry")
        with unit_of_work() as session:
            version = publish_dataset(
                session=session,
                actor=acting_user(session, as_user),
                entry=parsed,
                data_path=source,
                datasets_dir=get_settings().datasets_dir,
                class_change_basis=basis,
            )
            typer.echo(
                json.dumps(
                    {
                        "dataset": parsed.name,
                        "version": version.version,
                        "quality": version.quality,
                    },
                    ensure_ascii=False,
                    indent=2,
                )
            )


@catalog_app.command("list")
def list_public() -> None:
    """The public catalogue: name, class, latest version."""
    with refusals_exit(), unit_of_work() as session:
        for ds in public_datasets(session):
            v = latest_version(session, ds)
            typer.echo(f"{ds.name}\t{ds.open_class}\tv{v.version if v else '-'}\t{ds.status}")
