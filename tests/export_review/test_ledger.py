"""The budget ledger: exact amounts, refusals that charge nothing, no overspending under
parallel processes (SQLite here; PostgreSQL when SANDBOX_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import func, select

from export_review import ledger
from sandbox.db.base import Base, make_engine, make_sessionmaker, transaction
from sandbox.errors import PolicyViolation, ValidationFailed
from tests.databases import fresh_postgres_database


def _sessions(url: str):
    engine = make_engine(url)
    Base.metadata.create_all(
        engine, tables=[ledger.PrivacyBudget.__table__, ledger.PrivacyCharge.__table__]
    )
    return make_sessionmaker(engine)


def _charge(sessions, agreement_id: str, epsilon: float) -> ledger.BudgetState:
    with transaction(sessions) as session:
        return ledger.charge(
            session,
            agreement_id,
            epsilon=ledger.epsilon_units(epsilon),
            delta=0,
            sql="SELECT 1",
            mechanisms=["test"],
        )


def test_budget_is_registered_once_and_kept(world, tmp_path):
    sessions = _sessions(f"sqlite:///{tmp_path / 'l.db'}")
    with transaction(sessions) as session:
        assert ledger.ensure_budget(session, world.agreement).epsilon_remaining == 3.0
    _charge(sessions, world.agreement.id, 1.0)
    with transaction(sessions) as session:
        assert ledger.ensure_budget(session, world.agreement).epsilon_remaining == 2.0


def test_amounts_are_exact_and_exhaustion_charges_nothing(world, tmp_path):
    sessions = _sessions(f"sqlite:///{tmp_path / 'l.db'}")
    with transaction(sessions) as session:
        ledger.ensure_budget(session, world.agreement)
    for _ in range(30):
        state = _charge(sessions, world.agreement.id, 0.1)
    assert state.epsilon_remaining == 0.0  # thirty tenths make exactly 3
    with pytest.raises(PolicyViolation) as info:
        _charge(sessions, world.agreement.id, 0.000001)
    assert info.value.rule == ledger.EXHAUSTED and "0 of the agreement's 3" in info.value.message
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(ledger.PrivacyCharge)) == 30


@pytest.mark.parametrize("bad", [0.0, -1.0, 1e-7, float("nan")])
def test_malformed_epsilon_is_refused(bad):
    with pytest.raises(ValidationFailed):
        ledger.epsilon_units(bad)


def _spend_until_refused(url: str, agreement_id: str, start, results) -> None:
    sessions = make_sessionmaker(make_engine(url))
    start.wait()
    granted = 0
    for _ in range(5):
        try:
            _charge(sessions, agreement_id, 0.25)
            granted += 1
        except PolicyViolation:
            pass
    results.put(granted)


def _race(url: str, agreement) -> None:
    sessions = _sessions(url)
    with transaction(sessions) as session:
        ledger.ensure_budget(session, agreement)
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(4), ctx.Queue()
    workers = [
        ctx.Process(target=_spend_until_refused, args=(url, agreement.id, start, results))
        for _ in range(4)
    ]
    for w in workers:
        w.start()
    granted = sum(results.get(timeout=120) for _ in workers)
    for w in workers:
        w.join(timeout=60)
    assert granted == 12  # 20 attempts of 0.25 against 3.0: exactly 12 can be paid
    with transaction(sessions) as session:
        state = ledger.budget_state(session, agreement.id)
        charges = session.scalar(select(func.sum(ledger.PrivacyCharge.epsilon)))
    assert state.epsilon_remaining == 0.0 and charges == 3 * ledger.EPSILON_UNIT


def test_parallel_processes_never_overspend_on_sqlite(world, tmp_path):
    _race(f"sqlite:///{tmp_path / 'race.db'}", world.agreement)


@pytest.mark.postgres
def test_parallel_processes_never_overspend_on_postgres(world):
    with fresh_postgres_database() as url:
        _race(url, world.agreement)
