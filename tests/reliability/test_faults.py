"""Killed at every fault point, a worker loses no record and leaves no half-made change
(issue 12, item 1), on SQLite and on PostgreSQL.

A real ``sandbox query-worker`` process answers a query, a DP release, a refused DP release,
a DP export and a file export over HTTP. With ``SANDBOX_FAULT_POINT`` it kills itself
(SIGKILL) at that point of :data:`sandbox.audit.faults.FAULT_POINTS`; the next worker,
started on the same database (armed at the next point), links what was committed as it
starts, and then the privacy charges, the export requests, the query log and the audit
events match one to one and the chain verifies. A traced run checks the list itself: every
database commit the worker makes is just after a ``*.commit`` point, and the scenario passes
every listed point, so a new commit step without a fault point (or a point this test never
kills at) fails here.
"""

from __future__ import annotations

import json
import signal
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from sqlalchemy import func, select

from export_review.ledger import PrivacyCharge
from export_review.models import ExportRequest
from query_guard.service.models import QueryLog
from sandbox.audit.faults import FAULT_POINT_ENV, FAULT_POINTS, FAULT_TRACE_ENV
from sandbox.audit.models import AuditEvent, AuditOutbox
from sandbox.audit.verify import verify_chain
from sandbox.db.base import read_only
from tests.query_service.conftest import AGGREGATE, World, bearer
from tests.reliability.worker_process import Worker, running_worker

COUNTS = "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district"
#: Refused by the guard (QG-007): recorded, charged nothing.
BY_PATIENT = "SELECT patient_id, count(*) AS n FROM clinic_visits GROUP BY patient_id"
EPSILON = 0.01


def _scenario(url: str, token: str) -> None:
    """One of everything the door commits; stops at the first request the worker dies in."""
    with httpx.Client(base_url=url, headers=bearer(token), timeout=60) as http:
        steps = [
            lambda: http.post("/qs/query", json={"sql": COUNTS}),
            lambda: http.post("/qs/dp", json={"sql": COUNTS, "epsilon": EPSILON}),
            lambda: http.post("/qs/dp", json={"sql": BY_PATIENT, "epsilon": EPSILON}),
            lambda: http.post(
                "/qs/dp-exports", json={"sql": COUNTS, "epsilon": EPSILON, "purpose": "Table 1"}
            ),
            lambda: http.post(
                "/qs/exports",
                data={"purpose": "Table 2", "queries": json.dumps([COUNTS])},
                files=[("files", ("table.csv", b"district,n\nA,12\n"))],
            ),
        ]
        for step in steps:
            try:
                r = step()
            except httpx.TransportError:
                return
            assert r.status_code < 500, r.text


def _killed(worker: Worker) -> None:
    """The worker died by its own SIGKILL (so the armed point was reached)."""
    assert worker.process.wait(60) == -signal.SIGKILL, worker.errors()


def _assert_one_to_one(world: World) -> None:
    """Charges, export requests, queries and their events match one to one; nothing waits
    in the outbox; the chain verifies."""
    with read_only(world.factory) as session:
        events = [
            (e.action, e.object, json.loads(e.details))
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]
        charges = sorted(session.scalars(select(PrivacyCharge.id)))
        requests = {
            r.id: (r.kind, r.status, r.dp_result) for r in session.scalars(select(ExportRequest))
        }
        logged = sorted(session.scalars(select(QueryLog.id)))
        waiting = session.scalar(select(func.count()).select_from(AuditOutbox))
        result = verify_chain(session)
    assert waiting == 0
    assert result.ok, result.problems
    released = [d for a, _, d in events if a == "dp.release" and "refused" not in d]
    assert sorted(d["charge"] for d in released) == charges
    assert sorted(d["export"] for d in released if "export" in d) == sorted(
        rid for rid, (kind, _, _) in requests.items() if kind == "dp"
    )
    created = Counter(o for a, o, _ in events if a == "export.create")
    assert created == Counter(f"export:{rid}" for rid in requests)
    moves: dict[str, list[str]] = defaultdict(list)
    for action, obj, details in events:
        if action.startswith("export.") and "to" in details:
            moves[obj].append(details["to"])
    for rid, (kind, status, result_) in requests.items():
        assert (moves[f"export:{rid}"] or ["draft"])[-1] == status, (rid, moves)
        assert kind != "dp" or (result_ is None) == (status == "draft")
    assert sorted(d["query_log"] for a, _, d in events if a == "query") == logged


def test_a_worker_killed_at_each_fault_point_loses_no_record(world: World) -> None:
    token = world.tokens[AGGREGATE]
    # The appender's point first, while nothing waits: every later worker's start links
    # what the one before it left, and only that point is on the way through a start.
    points = sorted(FAULT_POINTS, key=lambda point: point != "audit.link.commit")
    for point in points:
        worker = Worker(world, AGGREGATE, {FAULT_POINT_ENV: point})
        try:
            worker.wait_until_up()
            _assert_one_to_one(world)  # what the worker killed before was linked at this start
            _scenario(worker.url, token)
            _killed(worker)
        finally:
            worker.stop()
    with running_worker(world, AGGREGATE):
        _assert_one_to_one(world)


def test_every_commit_of_the_door_follows_a_listed_fault_point(
    world: World, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.txt"
    with running_worker(world, AGGREGATE, {FAULT_TRACE_ENV: str(trace)}) as worker:
        _scenario(worker.url, world.tokens[AGGREGATE])
    lines: dict[str, list[str]] = defaultdict(list)
    for line in trace.read_text(encoding="utf-8").splitlines():
        pid, thread, what = line.split(" ", 2)
        lines[f"{pid}/{thread}"].append(what)
    unmarked = [
        (thread, i)
        for thread, seen in lines.items()
        for i, what in enumerate(seen)
        if what == "commit" and (i == 0 or not seen[i - 1].endswith(".commit"))
    ]
    assert unmarked == [], f"database commits with no fault point before them: {unmarked}"
    passed = {what.removeprefix("point ") for seen in lines.values() for what in seen}
    assert passed - {"commit"} == set(FAULT_POINTS)
    _assert_one_to_one(world)
