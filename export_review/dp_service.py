"""Differentially private releases through the door (export_review's ledger and OpenDP).

The guard runs with the datasets suspended right now (Shanghai Art.22), then the release
is planned from the text alone (a refusal there charges nothing), charged and recorded in
one step (:func:`sandbox.audit.advance.advance`, step ``dp.charge``: the charge, its
``dp.release`` event and, for a DP export, the request's draft commit together), and only
then is the data read and noise drawn. Every request, released or refused, is an audit
event; the event holds the query with identifier literals hashed, ε, the mechanisms and the
charge — never the noisy values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from export_review import ledger
from export_review.dp_export import PlannedRelease, compute_release, plan_dp_release
from query_guard.guard import check_query
from query_guard.service.access import Caller
from query_guard.service.connections import ConnectionCache
from query_guard.service.fingerprint import redact_sql
from query_guard.service.queries import QueryBlocked, identifier_columns
from sandbox.audit.advance import advance
from sandbox.audit.record import record
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry
from sandbox.errors import SandboxError

#: Makes the export request a release is for, in the charge's own step; its id.
Draft = Callable[[Session], int]


@dataclass(frozen=True)
class Charged:
    """A release paid for and recorded: what :func:`compute` needs to draw its noise."""

    planned: PlannedRelease
    state: ledger.BudgetState
    #: The export request the release is for (``None`` for a plain release).
    export_id: int | None = None


def charge(
    caller: Caller,
    sql: str,
    epsilon: float,
    *,
    sessions: sessionmaker[Session],
    key: bytes,
    draft: Draft | None = None,
) -> Charged:
    """Plan the release, then charge it and record it in one commit (with ``draft``'s export
    request when given); a refusal is recorded, charges nothing and is raised."""

    def guard(text: str, _agreement: Agreement, _catalog: Mapping[str, CatalogEntry]) -> None:
        decision = check_query(text, caller.guard)
        if decision.action == "block":
            raise QueryBlocked(decision)

    details: dict[str, Any] = {
        "sql": redact_sql(key, sql, identifier_columns(caller)),
        "epsilon": epsilon,
    }

    def pay(session: Session) -> Charged:
        ledger.ensure_budget(session, caller.agreement)
        state = planned.charge(session, caller.agreement_id)
        export_id = draft(session) if draft is not None else None
        released = {
            **details,
            "epsilon_spent": planned.epsilon_units / ledger.EPSILON_UNIT,
            "delta_spent": planned.delta_units / ledger.DELTA_UNIT,
            "mechanisms": planned.mechanisms,
            "charge": state.charge_id,
        }
        if export_id is not None:
            released["export"] = export_id
        _record(session, caller, released)
        return Charged(planned, state, export_id)

    try:
        planned = plan_dp_release(
            agreement=caller.agreement,
            catalog=caller.guard.catalog,
            sql=sql,
            epsilon=epsilon,
            guard=guard,
        )
        return advance(sessions, "dp.charge", pay)
    except SandboxError as exc:
        refused = {**details, "refused": {"rule": exc.rule, "article": exc.article}}
        advance(sessions, "refusal", lambda session: _record(session, caller, refused))
        raise


def compute(charged: Charged, *, cache: ConnectionCache, database: Path) -> dict[str, Any]:
    """Read the agreement's data and draw the noise of a charged release: the contract's
    JSON object."""
    with cache.cursor(database) as cursor:
        return compute_release(cursor, charged.planned, charged.state)


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
    charged = charge(caller, sql, epsilon, sessions=sessions, key=key)
    return compute(charged, cache=cache, database=database)


def _record(session: Session, caller: Caller, details: dict[str, Any]) -> None:
    record(
        session,
        actor=caller.user.username,
        action="dp.release",
        object=f"agreement:{caller.agreement_id}",
        details=details,
    )
