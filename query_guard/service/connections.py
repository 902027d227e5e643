"""Open per-agreement databases once, and reopen them when provisioning rebuilds them.

Opening a DuckDB file costs far more than a small query, so each agreement's
file stays open on the hardened engine. A rebuild replaces the file by a rename
(new inode), which :func:`file_identity` notices. DuckDB keeps one instance per
path in the process and hands it back to every later ``connect`` — the *old*
file's instance while any connection to it lives — so the old connection is
closed, once no query is using it, before the new file is opened.

What depends only on a query's text and the file (the row estimate of its plan, which
:func:`query_guard.engine.check_cardinality` reads, and the prepared plan itself, kept by
the file's pooled cursors) is remembered with the open file, and forgotten with it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from query_guard.engine import Plans
from query_guard.remembered import Remembered
from sandbox.errors import NotFound

FileIdentity = tuple[int, int, int, int]
#: Plans whose row estimate one open file keeps.
ESTIMATES_KEPT = 512


def file_identity(path: Path) -> FileIdentity:
    """Device, inode, modification time and size: any rebuild changes at least one."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass
class _Open:
    conn: duckdb.DuckDBPyConnection
    identity: FileIdentity
    users: int = 0
    estimates: Remembered[str, int | None] = field(
        default_factory=lambda: Remembered(ESTIMATES_KEPT)
    )
    plans: Plans = field(init=False)

    def __post_init__(self) -> None:
        self.plans = Plans(self.conn)

    def close(self) -> None:
        self.plans.close()
        self.conn.close()


@dataclass(frozen=True)
class Opened:
    """A cursor on an agreement's current file, and the row estimates and prepared plans
    kept for that file."""

    cursor: duckdb.DuckDBPyConnection
    estimates: Remembered[str, int | None]
    plans: Plans


class ConnectionCache:
    """One open connection per database path; each query gets its own cursor on it."""

    def __init__(self, open_database: Callable[[Path], duckdb.DuckDBPyConnection]):
        self._open_database = open_database
        self._changed = threading.Condition()
        self._open: dict[Path, _Open] = {}

    def _current(self, path: Path) -> _Open:
        """The open entry for ``path``'s current file; call holding ``self._changed``."""
        while True:
            try:
                identity = file_identity(path)
            except FileNotFoundError as exc:
                raise NotFound(
                    "this agreement's database is not provisioned; ask the operator",
                    rule="workspace-not-provisioned",
                ) from exc
            entry = self._open.get(path)
            if entry is not None and entry.identity == identity:
                return entry
            if entry is not None:
                if entry.users:
                    self._changed.wait()
                    continue
                entry.close()
                del self._open[path]
            entry = _Open(self._open_database(path), identity)
            self._open[path] = entry
            return entry

    @contextmanager
    def cursor(self, path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the current file at ``path``, released when the block ends."""
        with self.open(path) as opened:
            yield opened.cursor

    @contextmanager
    def open(self, path: Path) -> Iterator[Opened]:
        """A cursor on the current file at ``path`` with what is kept for that file."""
        path = Path(path).resolve()
        with self._changed:
            entry = self._current(path)
            entry.users += 1
        cursor = entry.conn.cursor()
        try:
            yield Opened(cursor, entry.estimates, entry.plans)
        finally:
            cursor.close()
            with self._changed:
                entry.users -= 1
                self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            for entry in self._open.values():
                entry.close()
            self._open.clear()
