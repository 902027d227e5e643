"""``sandbox export``: differentially private releases (ARCHITECTURE "Differentially
private export on the command line").

Exit status: 0 released (one JSON object on stdout); 4 refused (``{"error",
"rule"}`` on stderr, nothing charged); 2 usage or configuration error.
"""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer

from export_review import ledger
from export_review.dp_export import release_dp
from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly
from sandbox.contracts import load_agreement, load_catalog
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.errors import PolicyViolation, SandboxError
from sandbox.settings import get_settings

export_app = typer.Typer(no_args_is_help=True, help=__doc__)

REFUSED = 4
USAGE = 2


@export_app.callback()
def _group() -> None:
    """Keep ``dp`` a subcommand even while it is the only one."""


def _fail(payload: dict[str, Any], code: int) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False), err=True)
    sys.exit(code)


@export_app.command("dp")
def dp(
    catalog: Path = typer.Option(..., "--catalog", help="Catalogue directory of dataset YAMLs."),
    agreement: Path = typer.Option(..., "--agreement", help="Agreement YAML file."),
    sql: str = typer.Option(..., "--sql", help="The aggregate query to release."),
    epsilon: float = typer.Option(..., "--epsilon", help="ε to spend on this release."),
    db: str | None = typer.Option(
        None, "--db", help="SQLAlchemy URL of the ledger database (default: the platform's own)."
    ),
) -> None:
    """Release SQL with OpenDP noise, charging EPSILON to the agreement's budget."""
    try:
        datasets = load_catalog(catalog)
        terms = load_agreement(agreement)
        url = db or get_settings().db_url
        ensure_schema(url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            ledger.ensure_budget(session, terms)
        with tempfile.TemporaryDirectory(prefix="dp-") as tmp:
            # A throwaway pseudonym key: a DP release never shows identifiers,
            # it only needs them to tell entities apart.
            path = build_agreement_database(
                terms,
                datasets,
                key=secrets.token_bytes(32),
                out_path=Path(tmp) / "agreement.duckdb",
            )
            conn = open_readonly(path, temp_dir=tmp)
            try:
                result = release_dp(
                    sessions=sessions,
                    conn=conn,
                    agreement=terms,
                    catalog=datasets,
                    sql=sql,
                    epsilon=epsilon,
                )
            finally:
                conn.close()
    except PolicyViolation as exc:
        _fail({"error": str(exc), "rule": exc.rule}, REFUSED)
    except SandboxError as exc:
        _fail({"error": str(exc), "rule": exc.rule}, USAGE)
    typer.echo(json.dumps(result, ensure_ascii=False, default=str))
