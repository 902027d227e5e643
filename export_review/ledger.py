"""The privacy-budget ledger: one budget per agreement, one charge per DP release.

Amounts are integers — ε in micro-units, δ in atto-units (10⁻¹⁸) — so the
budget composes additively and exactly, never as accumulated floats
(ARCHITECTURE "Differential privacy, precisely"). A charge reads and updates
the budget row under a lock: ``SELECT … FOR UPDATE`` on PostgreSQL, the
``BEGIN IMMEDIATE`` write lock on SQLite (see ``sandbox.db.base``), so
concurrent releases from parallel processes never overspend. The caller
commits the charge before any noisy value is computed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from sandbox.contracts.agreement import Agreement
from sandbox.db.base import Base, utcnow
from sandbox.errors import PolicyViolation, ValidationFailed

EXHAUSTED = "dp-budget-exhausted"
EPSILON_UNIT = 10**6
DELTA_UNIT = 10**18


class PrivacyBudget(Base):
    """The agreement's total (ε, δ) and what has been spent of it."""

    __tablename__ = "privacy_budgets"

    agreement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    epsilon_total: Mapped[int] = mapped_column(BigInteger)
    delta_total: Mapped[int] = mapped_column(BigInteger)
    epsilon_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    delta_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PrivacyCharge(Base):
    """One DP release paid for: what it cost, which mechanisms, and a hash of its query."""

    __tablename__ = "privacy_charges"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(
        ForeignKey("privacy_budgets.agreement_id"), index=True
    )
    epsilon: Mapped[int] = mapped_column(BigInteger)
    delta: Mapped[int] = mapped_column(BigInteger)
    #: SHA-256 of the query text: the text itself may hold identifier literals.
    query_sha256: Mapped[str] = mapped_column(String(64))
    mechanisms: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class BudgetState:
    """Budget figures in ledger units, with the natural-unit views reports need."""

    epsilon_total_units: int
    delta_total_units: int
    epsilon_spent_units: int
    delta_spent_units: int
    #: The charge that brought the budget to this state, when it comes from :func:`charge`
    #: (the release's audit event names it).
    charge_id: int | None = None

    @property
    def epsilon_total(self) -> float:
        return self.epsilon_total_units / EPSILON_UNIT

    @property
    def epsilon_remaining(self) -> float:
        return (self.epsilon_total_units - self.epsilon_spent_units) / EPSILON_UNIT

    @property
    def delta_remaining(self) -> float:
        return (self.delta_total_units - self.delta_spent_units) / DELTA_UNIT


def epsilon_units(epsilon: float) -> int:
    """ε as whole micro-units; more than six decimals is refused rather than rounded."""
    scaled = epsilon * EPSILON_UNIT
    if not math.isfinite(scaled) or scaled <= 0 or abs(round(scaled) - scaled) > 1e-6:
        raise ValidationFailed(
            f"epsilon must be a positive number with at most 6 decimals, got {epsilon!r}",
            rule="dp-epsilon",
        )
    return round(scaled)


def delta_units(delta: float) -> int:
    """δ in atto-units, rounded up so the ledger never records less than was spent."""
    return math.ceil(delta * DELTA_UNIT)


def _state(budget: PrivacyBudget) -> BudgetState:
    return BudgetState(
        budget.epsilon_total, budget.delta_total, budget.epsilon_spent, budget.delta_spent
    )


def ensure_budget(session: Session, agreement: Agreement) -> BudgetState:
    """Register the agreement's budget if the database does not hold it yet.

    An existing budget is kept as it is: the database copy is authoritative.
    """
    values = {
        "agreement_id": agreement.id,
        "epsilon_total": round(agreement.privacy.epsilon * EPSILON_UNIT),
        "delta_total": round(agreement.privacy.delta * DELTA_UNIT),
        "epsilon_spent": 0,
        "delta_spent": 0,
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(PrivacyBudget).values(**values).on_conflict_do_nothing())
    return budget_state(session, agreement.id)


def _budget(session: Session, agreement_id: str, *, lock: bool) -> PrivacyBudget:
    query = select(PrivacyBudget).where(PrivacyBudget.agreement_id == agreement_id)
    if lock:
        query = query.with_for_update()
    budget = session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()
    if budget is None:
        raise PolicyViolation(
            EXHAUSTED,
            "agreement clause privacy",
            f"agreement {agreement_id!r} has no privacy budget registered; no DP release "
            "is possible until it is",
        )
    return budget


def budget_state(session: Session, agreement_id: str) -> BudgetState:
    """The agreement's budget as it stands (a plain read: takes no lock)."""
    return _state(_budget(session, agreement_id, lock=False))


def charge(
    session: Session,
    agreement_id: str,
    *,
    epsilon: int,
    delta: int,
    sql: str,
    mechanisms: list[str],
) -> BudgetState:
    """Debit (ε, δ) in ledger units, or refuse with ``dp-budget-exhausted``.

    The caller commits the session, with the release's audit event, before computing
    any noisy value.
    """
    budget = _budget(session, agreement_id, lock=True)
    state = _state(budget)
    if budget.epsilon_spent + epsilon > budget.epsilon_total:
        raise PolicyViolation(
            EXHAUSTED,
            "agreement clause privacy.epsilon",
            f"the release asks for epsilon {epsilon / EPSILON_UNIT:g} but only "
            f"{state.epsilon_remaining:g} of the agreement's {state.epsilon_total:g} remains; "
            "ask for a smaller epsilon or release fewer statistics",
        )
    if budget.delta_spent + delta > budget.delta_total:
        raise PolicyViolation(
            EXHAUSTED,
            "agreement clause privacy.delta",
            f"the release needs delta {delta / DELTA_UNIT:.3g} to select groups but only "
            f"{state.delta_remaining:.3g} remains; group by columns with public values instead",
        )
    budget.epsilon_spent += epsilon
    budget.delta_spent += delta
    row = PrivacyCharge(
        agreement_id=agreement_id,
        epsilon=epsilon,
        delta=delta,
        query_sha256=hashlib.sha256(sql.encode()).hexdigest(),
        mechanisms="; ".join(mechanisms),
    )
    session.add(row)
    session.flush()
    return replace(_state(budget), charge_id=row.id)
