"""Decisions remembered per worker: a notebook runs the same cells again and again.

A decision depends only on the SQL text, the guard's code and the context's
:attr:`~query_guard.context.GuardContext.fingerprint` (agreement, catalogue entries,
suspensions), so the same key always gets the same decision; any change to the
agreement or the catalogue changes the key. What is remembered is the decision, never
a result: every query still runs, and is recorded, on its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from query_guard.context import GuardContext
from query_guard.findings import Decision
from query_guard.guard import check_query

#: How many decisions one worker keeps (the least recently used go first).
REMEMBERED = 512


class Decisions:
    """A bounded, thread-safe memory of :func:`check_query`'s answers."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[str, str], Decision] = OrderedDict()
        self._lock = threading.Lock()

    def decide(self, sql: str, ctx: GuardContext) -> Decision:
        key = (ctx.fingerprint, sql)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        decision = check_query(sql, ctx)
        with self._lock:
            self._kept[key] = decision
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return decision
