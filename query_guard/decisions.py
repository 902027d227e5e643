"""Decisions remembered per worker: a notebook runs the same cells again and again.

A decision depends only on the SQL text, the guard's code and the context's
:attr:`~query_guard.context.GuardContext.fingerprint` (agreement, catalogue entries,
suspensions), so the same key always gets the same decision; any change to the
agreement or the catalogue changes the key. What is remembered is the decision, never
a result: every query still runs, and is recorded, on its own.
"""

from __future__ import annotations

from query_guard.context import GuardContext
from query_guard.findings import Decision
from query_guard.guard import check_query
from query_guard.remembered import Remembered

#: How many decisions one worker keeps (the least recently used go first).
REMEMBERED = 512


class Decisions:
    """A bounded, thread-safe memory of :func:`check_query`'s answers."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._kept: Remembered[tuple[str, str], Decision] = Remembered(size)

    def decide(self, sql: str, ctx: GuardContext) -> Decision:
        return self._kept.get((ctx.fingerprint, sql), lambda: check_query(sql, ctx))
