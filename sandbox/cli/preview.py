"""``sandbox preview``: set a dataset's preview budget, generate a synthetic preview, download it.

The same service functions and permission checks as the API
(``/api/catalog/{name}/preview``).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sandbox.cli.common import (
    AS_OPTION,
    acting_user,
    platform_sessions,
    refusals_exit,
    unit_of_work,
)
from sandbox.db.base import read_only
from sandbox.preview.files import file_stem, preview_zip
from sandbox.preview.service import (
    DEFAULT_ROWS,
    latest_preview,
    make_preview,
    preview_view,
    set_preview_budget,
)
from sandbox.settings import get_settings

preview_app = typer.Typer(no_args_is_help=True)


@preview_app.command("budget")
def budget(
    name: str = typer.Argument(..., help="Dataset name."),
    epsilon: float = typer.Option(..., help="Total epsilon all previews may spend."),
    delta: float = typer.Option(0.0, help="Total delta (needed to show date columns)."),
    max_contributions: int = typer.Option(1, help="Rows one entity adds to a preview."),
    as_user: str = AS_OPTION,
) -> None:
    """Set the dataset's preview budget (its provider only)."""
    with refusals_exit(4), unit_of_work() as session:
        state = set_preview_budget(
            session=session,
            actor=acting_user(session, as_user),
            name=name,
            epsilon=epsilon,
            delta=delta,
            max_contributions=max_contributions,
        )
        typer.echo(
            json.dumps(
                {
                    "dataset": name,
                    "epsilon_total": state.epsilon_total,
                    "epsilon_remaining": state.epsilon_remaining,
                }
            )
        )


@preview_app.command("make")
def make(
    name: str = typer.Argument(..., help="Dataset name."),
    epsilon: float = typer.Option(..., help="Epsilon this preview spends."),
    delta: float = typer.Option(0.0, help="Delta for selecting months of date columns."),
    rows: int = typer.Option(DEFAULT_ROWS, help="Rows in the synthetic sample."),
    as_user: str = AS_OPTION,
) -> None:
    """Charge the preview budget and release a synthetic preview; prints it as JSON.

    Exits 4 on a refusal (budget exhausted, dataset not conditional), nothing charged.
    """
    with refusals_exit(4):
        with unit_of_work() as session:
            actor = acting_user(session, as_user)
        with platform_sessions() as factory:
            preview = make_preview(
                factory=factory,
                settings=get_settings(),
                actor=actor,
                name=name,
                epsilon=epsilon,
                delta=delta,
                rows=rows,
            )
        typer.echo(json.dumps(preview_view(preview), ensure_ascii=False, indent=2))


@preview_app.command("download")
def download(
    name: str = typer.Argument(..., help="Dataset name."),
    out: Path = typer.Option(Path("."), help="Directory to write the zip into."),
) -> None:
    """Write the newest preview as ``NAME_vN_SYNTHETIC_PREVIEW.zip`` (spends nothing)."""
    with refusals_exit(4):
        with platform_sessions() as factory, read_only(factory) as session:
            dataset, preview = latest_preview(session, name)
            content = preview_zip(
                preview, dataset.entry["title"], dataset.entry.get("conditions", "")
            )
            path = out / f"{file_stem(preview)}.zip"
        path.write_bytes(content)
        typer.echo(str(path))
