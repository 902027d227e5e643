"""Named points where a test kills the process, to show no commit step can lose a record.

Every database commit of :func:`sandbox.audit.advance.advance` (the change with its events,
and the appender's batch) is preceded by one of :data:`FAULT_POINTS`, and so is the moment
between a commit and the linking of its events. In production a point costs one look at the
environment. With ``SANDBOX_FAULT_POINT`` naming a point, the process kills itself there with
SIGKILL, as ``kill -9`` or a power loss would; the fault-injection test
(``tests/reliability/test_faults.py``) goes through the whole list with a real worker and
checks that what was committed is recorded and nothing else happened. With
``SANDBOX_FAULT_TRACE`` naming a file, each point passed and each commit of the engine a
process serves with (:func:`trace_commits`) is written there, so the same test sees a new
commit step that has no point before it.
"""

from __future__ import annotations

import os
import signal
import threading

from sqlalchemy import Engine, event

#: Names the point at which this process kills itself (tests only).
FAULT_POINT_ENV = "SANDBOX_FAULT_POINT"
#: Names a file to which every point passed and every commit is appended (tests only).
FAULT_TRACE_ENV = "SANDBOX_FAULT_TRACE"

#: Every fault point, in the order a step passes them. ``STEP.commit`` comes just before
#: the step's change and events commit; ``STEP.committed`` after that commit (on PostgreSQL
#: before the events are linked into the chain); ``audit.link.commit`` before a commit that
#: links events: the appender's batch, or on SQLite the step's own commit.
FAULT_POINTS: tuple[str, ...] = (
    "query.commit",  # a query's log row, its early warnings and its event
    "query.committed",
    "refusal.commit",  # a refused request's event (query service)
    "refusal.committed",
    "dp.charge.commit",  # a DP charge, its dp.release event (and a DP export's draft)
    "dp.charge.committed",
    "export.submit.commit",  # an export request handed in, with its checks and events
    "export.submit.committed",
    "audit.link.commit",  # the appender's batch of events, linked into the chain
)


class UnlistedFaultPoint(ValueError):
    """A commit step names a point that is not in :data:`FAULT_POINTS` (a programming error)."""


def fault_point(name: str) -> None:
    """Mark that the process is at ``name``; die here when the environment arms it."""
    if name not in FAULT_POINTS:
        raise UnlistedFaultPoint(
            f"fault point {name!r} is not in sandbox.audit.faults.FAULT_POINTS; list it so "
            "the fault-injection test kills the process there"
        )
    if os.environ.get(FAULT_TRACE_ENV):
        _trace(f"point {name}")
    if os.environ.get(FAULT_POINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _trace(line: str) -> None:
    path = os.environ[FAULT_TRACE_ENV]
    with open(path, "a", encoding="utf-8") as trace:
        trace.write(f"{os.getpid()} {threading.get_ident()} {line}\n")


def trace_commits(engine: Engine) -> None:
    """With ``SANDBOX_FAULT_TRACE`` set, write each commit of ``engine`` (the one a process
    serves requests with) to the trace, so a commit outside any step shows up there."""
    if os.environ.get(FAULT_TRACE_ENV) and not event.contains(engine, "commit", _traced_commit):
        event.listen(engine, "commit", _traced_commit)


def _traced_commit(_connection: object) -> None:
    _trace("commit")
