"""``sandbox export``: differentially private releases (ARCHITECTURE "Differentially
private export on the command line").

A release goes through the query service's own release function, so it is
guarded, charged and recorded exactly as ``POST /qs/dp``: every release and
every refusal is an event in the audit record of the database at ``--db``
(actor ``cli``). A platform's database (one that holds platform accounts) must
hold the agreement, active and equal to the file; an agreement it does not hold
is refused rather than given a budget the platform never granted. An empty
database is a ledger of its own: it gets the schema, and the agreement's budget
is registered from the file.

Exit status: 0 released (one JSON object on stdout); 4 refused (``{"error",
"rule"}`` on stderr, nothing charged); 2 usage or configuration error, an
agreement the platform does not hold among them.
"""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from export_review.dp_service import release
from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly
from query_guard.guard import GuardContext
from query_guard.service.access import Caller
from query_guard.service.connections import ConnectionCache
from sandbox.accounts.models import User
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.agreements.service import as_contract
from sandbox.catalog.service import suspended_datasets
from sandbox.cli.common import platform_sessions
from sandbox.contracts import Agreement, CatalogEntry, load_agreement, load_catalog
from sandbox.db.base import transaction
from sandbox.errors import Conflict, NotFound, PolicyViolation, SandboxError
from sandbox.settings import get_settings

export_app = typer.Typer(no_args_is_help=True, help=__doc__)

REFUSED = 4
USAGE = 2
#: Who the record names for a release made on the command line.
CLI_ACTOR = "cli"


@export_app.callback()
def _group() -> None:
    """Keep ``dp`` a subcommand even while it is the only one."""


def _fail(payload: dict[str, Any], code: int) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False), err=True)
    sys.exit(code)


def _holds_platform(session: Session) -> bool:
    return session.scalar(select(User.id).limit(1)) is not None


def _platform_copy(session: Session, terms: Agreement) -> AgreementRecord:
    """The platform's agreement, which must be the file's and active."""
    rec = session.get(AgreementRecord, terms.id)
    if rec is None:
        raise NotFound(
            f"agreement {terms.id} is not in this platform's database; a release is charged "
            "only under an agreement the platform holds (sandbox agreement import first)",
            rule="agreement-unknown",
        )
    if as_contract(rec).model_dump(mode="json") != terms.model_dump(mode="json"):
        raise Conflict(
            f"the agreement file differs from version {rec.version} of {rec.id} in the "
            f"platform, whose copy is authoritative (sandbox agreement export {rec.id})",
            rule="agreement-authoritative-copy",
        )
    if rec.status != AgreementStatus.active:
        raise PolicyViolation(
            "agreement-not-active",
            "Shanghai Art.26, 36",
            f"agreement {rec.id} is {rec.status}; releases are made only under an active agreement",
        )
    return rec


def _caller(session: Session, terms: Agreement, datasets: dict[str, CatalogEntry]) -> Caller:
    """The command line acting under the agreement, with the platform's suspensions."""
    if _holds_platform(session):
        rec = _platform_copy(session, terms)
        suspended = suspended_datasets(session) & frozenset(terms.datasets)
    else:
        rec, suspended = AgreementRecord(id=terms.id), frozenset()
    guard = GuardContext(terms, datasets, frozenset(suspended))
    return Caller(User(username=CLI_ACTOR), rec, terms, guard)


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
    settings = get_settings()
    try:
        datasets = load_catalog(catalog)
        terms = load_agreement(agreement)
        with platform_sessions(db) as sessions, tempfile.TemporaryDirectory(prefix="dp-") as tmp:
            with transaction(sessions) as session:
                caller = _caller(session, terms, datasets)
            # A throwaway pseudonym key: a DP release never shows identifiers,
            # it only needs them to tell entities apart.
            path = build_agreement_database(
                terms,
                datasets,
                key=secrets.token_bytes(32),
                out_path=Path(tmp) / "agreement.duckdb",
            )
            cache = ConnectionCache(lambda database: open_readonly(database, temp_dir=tmp))
            try:
                result = release(
                    caller,
                    sql,
                    epsilon,
                    sessions=sessions,
                    cache=cache,
                    database=path,
                    key=settings.secret_key.encode(),
                )
            finally:
                cache.close()
    except PolicyViolation as exc:
        _fail({"error": str(exc), "rule": exc.rule}, REFUSED)
    except SandboxError as exc:
        _fail({"error": str(exc), "rule": exc.rule}, USAGE)
    typer.echo(json.dumps(result, ensure_ascii=False, default=str))
