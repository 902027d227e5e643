"""What to count once a transaction commits: rows that Core statements insert, which no ORM
flush sees (:mod:`sandbox.http.metrics` counts them with the rows it sees flushed).

An observation is a tuple whose first item names its kind: ``("audit",)`` for one event
linked into the record, ``("query", decision, mode, duration_ms)`` for one query logged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

#: ``session.info`` key of the observations waiting for the commit.
PENDING = "sandbox_metrics_pending"


def count_on_commit(session: Session, *observation: Any) -> None:
    """Count ``observation`` if and when ``session``'s transaction commits."""
    session.info.setdefault(PENDING, []).append(observation)
