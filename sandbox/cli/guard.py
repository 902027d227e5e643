"""``sandbox guard check|run``: the query guard on the command line (ARCHITECTURE contract).

``check`` prints the guard's decision as one JSON object and exits 0 whatever
it is. ``run`` builds the agreement's database by the provisioning code path
(into a temporary directory, with a throwaway pseudonym key), runs the
guarded query on the hardened engine and prints CSV with a header; a blocked
query prints the decision on stderr and exits 3. Usage or configuration
errors exit 2 with the error on stderr; an allowed query that fails while
running (timeout, memory) exits 1.
"""

from __future__ import annotations

import csv
import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly, run_query
from query_guard.guard import GuardContext, check_query
from sandbox.contracts import load_agreement, load_catalog
from sandbox.contracts.validation import validate_agreement
from sandbox.errors import SandboxError

guard_app = typer.Typer(no_args_is_help=True, help=__doc__, add_completion=False)

CatalogOpt = Annotated[Path, typer.Option("--catalog", help="Directory of catalogue YAML files.")]
AgreementOpt = Annotated[Path, typer.Option("--agreement", help="Agreement YAML file.")]
SqlOpt = Annotated[str, typer.Option("--sql", help="The SQL query to check.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds before the query stops.")]

BLOCKED_EXIT = 3
CONFIG_EXIT = 2
QUERY_FAILED_EXIT = 1  # the query was allowed but failed while running (e.g. timeout)


def _context(catalog_dir: Path, agreement_file: Path) -> GuardContext:
    """Load and validate both contracts, or exit 2 with the error."""
    try:
        catalog = load_catalog(catalog_dir)
        agreement = load_agreement(agreement_file)
        validate_agreement(agreement, catalog)
    except SandboxError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(CONFIG_EXIT) from exc
    return GuardContext(agreement, catalog)


@guard_app.command()
def check(catalog: CatalogOpt, agreement: AgreementOpt, sql: SqlOpt) -> None:
    """Print the guard's decision on SQL as JSON (exit 0 whatever the decision)."""
    decision = check_query(sql, _context(catalog, agreement))
    typer.echo(json.dumps(decision.to_dict(), ensure_ascii=False))


@guard_app.command()
def run(
    catalog: CatalogOpt, agreement: AgreementOpt, sql: SqlOpt, timeout: TimeoutOpt = 60.0
) -> None:
    """Build the agreement's database, run the guarded query, print CSV (exit 3 if blocked)."""
    ctx = _context(catalog, agreement)
    decision = check_query(sql, ctx)
    if decision.sql is None:
        typer.echo(json.dumps(decision.to_dict(), ensure_ascii=False), err=True)
        raise typer.Exit(BLOCKED_EXIT)
    with tempfile.TemporaryDirectory(prefix="sandbox-guard-") as tmp:
        try:
            db = build_agreement_database(
                ctx.agreement,
                ctx.catalog,
                out_path=Path(tmp) / "agreement.duckdb",
                key=secrets.token_bytes(32),
            )
        except SandboxError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(CONFIG_EXIT) from exc
        conn = open_readonly(db, temp_dir=Path(tmp) / "spill")
        try:
            table = run_query(conn, decision.sql, timeout)
        except SandboxError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(QUERY_FAILED_EXIT) from exc
        finally:
            conn.close()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in zip(*(c.to_pylist() for c in table.columns), strict=True):
        writer.writerow(row)
