"""Differentially private releases through the door (export_review's ledger and OpenDP).

The guard runs with the datasets suspended right now (Shanghai Art.22), then
``export_review.dp_export.release_dp`` charges the budget and releases. Every
request, released or refused, is an audit event; the event holds the query
with identifier literals hashed, ε, and the mechanisms — never the noisy values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from export_review import ledger
from export_review.dp_export import release_dp
from query_guard.guard import check_query
from query_guard.service.access import Caller
from query_guard.service.connections import ConnectionCache
from query_guard.service.fingerprint import redact_sql
from query_guard.service.queries import QueryBlocked, identifier_columns
from sandbox.audit.record import record
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry
from sandbox.db.base import transaction
from sandbox.errors import SandboxError


def release(
    caller: Caller,
    sql: str,
    epsilon: float,
    *,
    sessions: sessionmaker[Session],
    cache: ConnectionCache,
    database: Path,
    key: bytes,
) -> dict[str, Any]:
    """Release ``sql`` with ε = ``epsilon`` under the caller's agreement; the contract's JSON."""

    def guard(text: str, _agreement: Agreement, _catalog: Mapping[str, CatalogEntry]) -> None:
        decision = check_query(text, caller.guard)
        if decision.action == "block":
            raise QueryBlocked(decision)

    details: dict[str, Any] = {
        "sql": redact_sql(key, sql, identifier_columns(caller)),
        "epsilon": epsilon,
    }
    try:
        with transaction(sessions) as session:
            ledger.ensure_budget(session, caller.agreement)
        with cache.cursor(database) as cursor:
            result = release_dp(
                sessions=sessions,
                conn=cursor,
                agreement=caller.agreement,
                catalog=caller.guard.catalog,
                sql=sql,
                epsilon=epsilon,
                guard=guard,
            )
    except SandboxError as exc:
        details["refused"] = {"rule": exc.rule, "article": exc.article}
        _record(sessions, caller, details)
        raise
    details.update(
        epsilon_spent=result["epsilon_spent"],
        delta_spent=result["delta_spent"],
        mechanisms=result["mechanisms"],
        rows=len(result["rows"]),
    )
    _record(sessions, caller, details)
    return result


def _record(sessions: sessionmaker[Session], caller: Caller, details: dict[str, Any]) -> None:
    with transaction(sessions) as session:
        record(
            session,
            actor=caller.user.username,
            action="dp.release",
            object=f"agreement:{caller.agreement_id}",
            details=details,
        )
