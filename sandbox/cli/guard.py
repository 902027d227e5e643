"""``sandbox guard check|run``: the query guard on the command line (ARCHITECTURE contract).

``check`` prints the guard's decision as one JSON object and exits 0 whatever
it is. ``run`` builds the agreement's database by the provisioning code path
(into a temporary directory, with a throwaway pseudonym key), runs the
guarded query on the hardened engine as the query service does, and prints
CSV with a header (exit 0). A query that is not answered exits 3 with the
decision's JSON object on stderr: blocked by the guard, or allowed and then
stopped while running — too long (QG-013) or failed in the engine (QG-014,
one fixed message, since an engine error can depend on the data). Usage or
configuration errors exit 2 with the error on stderr. The contract has no
other exit status.
"""

from __future__ import annotations

import csv
import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly
from query_guard.findings import Decision, Finding
from query_guard.guard import GuardContext, check_query
from query_guard.service.connections import ConnectionCache
from query_guard.service.queries import execute
from sandbox.contracts import load_agreement, load_catalog
from sandbox.contracts.validation import validate_agreement
from sandbox.errors import SandboxError

guard_app = typer.Typer(no_args_is_help=True, help=__doc__, add_completion=False)

CatalogOpt = Annotated[Path, typer.Option("--catalog", help="Directory of catalogue YAML files.")]
AgreementOpt = Annotated[Path, typer.Option("--agreement", help="Agreement YAML file.")]
SqlOpt = Annotated[str, typer.Option("--sql", help="The SQL query to check.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds before the query stops.")]

BLOCKED_EXIT = 3  # not answered: blocked by the guard, or stopped while running
CONFIG_EXIT = 2


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


def _not_answered(decision: Decision) -> NoReturn:
    """Exit 3 with the decision on stderr: the contract's answer to every unanswered query."""
    typer.echo(json.dumps(decision.to_dict(), ensure_ascii=False), err=True)
    raise typer.Exit(BLOCKED_EXIT)


@guard_app.command()
def check(catalog: CatalogOpt, agreement: AgreementOpt, sql: SqlOpt) -> None:
    """Print the guard's decision on SQL as JSON (exit 0 whatever the decision)."""
    decision = check_query(sql, _context(catalog, agreement))
    typer.echo(json.dumps(decision.to_dict(), ensure_ascii=False))


@guard_app.command()
def run(
    catalog: CatalogOpt, agreement: AgreementOpt, sql: SqlOpt, timeout: TimeoutOpt = 60.0
) -> None:
    """Build the agreement's database, run the guarded query, print CSV (exit 3 if not
    answered: blocked, or stopped while running)."""
    ctx = _context(catalog, agreement)
    decision = check_query(sql, ctx)
    if decision.sql is None:
        _not_answered(decision)
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
        cache = ConnectionCache(lambda path: open_readonly(path, temp_dir=Path(tmp) / "spill"))
        try:
            table = execute(cache, db, decision.sql, timeout, decision.checked)
        except SandboxError as exc:
            _not_answered(Decision("block", None, [Finding(exc.rule, exc.message, exc.article)]))
        finally:
            cache.close()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in zip(*(c.to_pylist() for c in table.columns), strict=True):
        writer.writerow(row)
