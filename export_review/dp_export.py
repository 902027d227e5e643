"""One DP release, end to end: refuse from the text, charge, then compute.

The order is the guarantee (ARCHITECTURE "Differential privacy, precisely"):
every refusal that the query text alone decides (guard, planner, ε format)
happens before the ledger is touched (:func:`plan_dp_release`), the charge is
committed (with its audit event, in the caller's step), and only then is the data
read and noise drawn (:func:`compute_release`). A release that fails after the
commit stays charged: budget is never refunded on a path where a noisy value might
have been computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlalchemy.orm import Session, sessionmaker

from export_review import ledger
from export_review.dp_plan import DpPlan, plan_query
from export_review.dp_release import SELECTION_DELTA_SHARE, PreparedRelease, execute, prepare
from query_guard.context import GuardContext
from query_guard.guard import check_query
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry
from sandbox.db.base import transaction
from sandbox.errors import PolicyViolation

#: Checks a query against the agreement and raises PolicyViolation when it is outside it.
Guard = Callable[[str, Agreement, Mapping[str, CatalogEntry]], None]


def guard_scope(sql: str, agreement: Agreement, catalog: Mapping[str, CatalogEntry]) -> None:
    """Refuse what the query guard blocks, with the guard's own rules and articles.

    A *rewrite* is accepted: the guard's rewrites (minimum group sizes) protect
    exact results, while a DP release protects every key by its noise and must
    release empty public keys too.
    """
    decision = check_query(sql, GuardContext(agreement, catalog))
    if decision.action == "block":
        blocking = [r for r in decision.reasons if r.action == "block"] or decision.reasons
        raise PolicyViolation(
            blocking[0].rule, blocking[0].article, "; ".join(r.message for r in blocking)
        )


def plan_release(
    sql: str, agreement: Agreement, catalog: Mapping[str, CatalogEntry], guard: Guard = guard_scope
) -> DpPlan:
    """Every check decided from the query text: the guard's first, then the DP planner's."""
    guard(sql, agreement, catalog)
    return plan_query(sql, agreement, catalog)


@dataclass(frozen=True)
class PlannedRelease:
    """A release decided from the text alone: its mechanisms and what it will cost."""

    sql: str
    prepared: PreparedRelease
    epsilon_units: int
    delta_units: int

    @property
    def mechanisms(self) -> list[str]:
        return [m.name for m in self.prepared.mechanisms]

    def charge(self, session: Session, agreement_id: str) -> ledger.BudgetState:
        """Debit the ledger in ``session``'s transaction (the caller commits it, with its
        record, before :func:`compute_release`)."""
        return ledger.charge(
            session,
            agreement_id,
            epsilon=self.epsilon_units,
            delta=self.delta_units,
            sql=self.sql,
            mechanisms=self.mechanisms,
        )


def plan_dp_release(
    *,
    agreement: Agreement,
    catalog: Mapping[str, CatalogEntry],
    sql: str,
    epsilon: float,
    guard: Guard = guard_scope,
) -> PlannedRelease:
    """Every refusal the query text decides (ε format, guard, planner); nothing is charged."""
    units = ledger.epsilon_units(epsilon)
    plan = plan_release(sql, agreement, catalog, guard)
    prepared = prepare(
        plan,
        epsilon=units / ledger.EPSILON_UNIT,
        max_contributions=agreement.privacy.max_contributions,
        selection_delta=agreement.privacy.delta * SELECTION_DELTA_SHARE,
    )
    return PlannedRelease(sql, prepared, units, ledger.delta_units(prepared.delta))


def compute_release(
    conn: duckdb.DuckDBPyConnection, planned: PlannedRelease, state: ledger.BudgetState
) -> dict[str, Any]:
    """Read the data and draw the noise of a release whose charge is committed; the
    contract's JSON object."""
    result = execute(conn, planned.prepared)
    return {
        "columns": result.columns,
        "rows": result.rows,
        "epsilon_spent": planned.epsilon_units / ledger.EPSILON_UNIT,
        "epsilon_remaining": state.epsilon_remaining,
        "delta_spent": planned.delta_units / ledger.DELTA_UNIT,
        "mechanisms": result.mechanisms,
    }


def release_dp(
    *,
    sessions: sessionmaker[Session],
    conn: duckdb.DuckDBPyConnection,
    agreement: Agreement,
    catalog: Mapping[str, CatalogEntry],
    sql: str,
    epsilon: float,
    guard: Guard = guard_scope,
) -> dict[str, Any]:
    """Release ``sql`` with ε = ``epsilon`` and return the contract's JSON object.

    ``conn`` is the agreement's own DuckDB database (tables named after the
    datasets). Raises :class:`PolicyViolation` (nothing charged when decided
    from the text; ``dp-budget-exhausted`` when the budget cannot pay) or
    :class:`ValidationFailed` for a malformed ε. The ledger alone, with no record:
    the platform releases through ``export_review.dp_service``, which commits the
    charge together with its audit event.
    """
    planned = plan_dp_release(
        agreement=agreement, catalog=catalog, sql=sql, epsilon=epsilon, guard=guard
    )
    with transaction(sessions) as session:
        state = planned.charge(session, agreement.id)
    return compute_release(conn, planned, state)
