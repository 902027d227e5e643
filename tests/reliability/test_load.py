"""Bounded load on one real query worker (issue 12): 8 clients × 100 small aggregate queries
over HTTP on 127.0.0.1, on SQLite and on PostgreSQL. Every query is answered, the record
holds exactly one ``query`` event per answered query, and the chain verifies. No timing is
asserted; the throughput is printed for the session notes.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from query_guard.service.models import QueryLog
from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import verify_chain
from sandbox.db.base import read_only
from tests.query_service.conftest import AGGREGATE, World, bearer
from tests.reliability.worker_process import running_worker

#: The CI bound; the environment may ask for more when measuring (not in CI).
CLIENTS = int(os.environ.get("SANDBOX_LOAD_CLIENTS", "8"))
QUERIES_EACH = int(os.environ.get("SANDBOX_LOAD_QUERIES", "100"))
#: Small aggregate queries of a few shapes, so the early warnings see a realistic mix.
QUERIES = [
    "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district",
    "SELECT district, sum(cost) AS total FROM clinic_visits GROUP BY district",
    "SELECT count(*) AS n FROM clinic_visits WHERE cost >= 100",
    "SELECT district, avg(cost) AS mean FROM clinic_visits WHERE cost < 500 GROUP BY district",
]


def _client(url: str, token: str, index: int) -> Counter[str]:
    """One researcher's session: ``QUERIES_EACH`` queries, one after the other."""
    outcomes: Counter[str] = Counter()
    with httpx.Client(base_url=url, headers=bearer(token), timeout=120) as http:
        for i in range(QUERIES_EACH):
            sql = QUERIES[(index + i) % len(QUERIES)]
            try:
                r = http.post(
                    "/qs/query", json={"sql": sql}, headers={"Accept": "application/json"}
                )
                outcomes["answered" if r.status_code == 200 else f"{r.status_code}: {r.text}"] += 1
            except httpx.TransportError as exc:
                outcomes[f"transport: {type(exc).__name__}"] += 1
    return outcomes


def _recorded(world: World) -> tuple[int, int]:
    """``query`` events of the agreement, and its query-log rows."""
    with read_only(world.factory) as session:
        events = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "query", AuditEvent.object == f"agreement:{AGGREGATE}")
        )
        logged = session.scalar(
            select(func.count()).select_from(QueryLog).where(QueryLog.agreement_id == AGGREGATE)
        )
    return events or 0, logged or 0


def test_one_worker_answers_every_query_and_records_each_once(world: World) -> None:
    token = world.tokens[AGGREGATE]
    before = _recorded(world)
    with running_worker(world, AGGREGATE) as worker:
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            outcomes = sum(
                pool.map(lambda i: _client(worker.url, token, i), range(CLIENTS)), Counter()
            )
        elapsed = time.perf_counter() - started
        log = worker.log.read_text(encoding="utf-8", errors="replace")
    answered = outcomes.pop("answered", 0)
    total = CLIENTS * QUERIES_EACH
    print(
        f"\n{world.settings.db_url.split(':')[0]}: {answered}/{total} answered in {elapsed:.1f} s "
        f"({answered / elapsed:.1f} queries/s); 'database is locked' in the worker's log: "
        f"{log.count('database is locked')}"
    )
    assert outcomes == Counter(), outcomes
    assert answered == total
    events, logged = _recorded(world)
    assert (events - before[0], logged - before[1]) == (answered, answered)
    with read_only(world.factory) as session:
        result = verify_chain(session)
    assert result.ok, result.problems
