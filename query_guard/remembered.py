"""A small bounded memory of answers that depend only on their key.

The query worker answers the same notebook cells again and again; what is worked out from
the SQL text alone (the guard's decision) or from the text and one unchanging database file
(the plan's row estimate) is kept here, the least recently used going first. Only values
that are the same whoever asks are kept: never a result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Remembered(Generic[K, V]):
    """At most ``size`` answers, thread-safe; two threads may work out one answer at once,
    and both get an equal one."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, work_out: Callable[[], V]) -> V:
        """The answer kept for ``key``, or ``work_out()``'s, kept from now on."""
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        value = work_out()
        with self._lock:
            self._kept[key] = value
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return value

    def oldest_first(self) -> list[K]:
        """The keys kept, the least recently used first."""
        with self._lock:
            return list(self._kept)
