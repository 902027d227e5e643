"""The hardened DuckDB engine a guarded query runs on.

The per-agreement file is opened read-only, with no files, network,
extensions or configuration changes, bounded memory and threads, its own
temporary directory, and a per-query timeout (THREAT_MODEL boundary 2: the
engine alone must stop an escape the guard misses). The platform's base data
is never attached to this connection. Resource exhaustion is bounded three
ways: a plan whose joins multiply rows past a limit is refused before it runs
(QG-017), a query over the memory or temporary-disk limit fails alone (QG-014)
and the connection answers the next one, and one past its time is interrupted,
repeatedly until it stops (QG-013).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from query_guard.anonymise.noise import dataset_key, register
from query_guard.anonymise.result import split_suppression
from query_guard.at_rest import attach
from query_guard.compile import PRIVATE_SCHEMA, SOURCES_TABLE
from query_guard.remembered import Remembered
from sandbox.errors import PolicyViolation, SandboxError

DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_THREADS = 2
TIMEOUT_RULE = "QG-013"
QUERY_ERROR_RULE = "QG-014"
CARDINALITY_RULE = "QG-017"
RESOURCES_ARTICLE = "Shanghai Art.26"

#: The most rows a step of a query's plan that multiplies rows (a join) may be estimated
#: to produce. Declared joins multiply rows (eight self-joins on a key repeated k times
#: make k^8 rows per key), and such a query holds the worker's cores until its timeout
#: and can overshoot it; refusing it on DuckDB's own estimate costs a plan, not a run.
#: 50 million is five times the 10-million-row benchmark tables: a declared join of one
#: row per key passes, a join whose estimate multiplies the data does not.
DEFAULT_MAX_ESTIMATED_ROWS = 50_000_000

#: Prepared statements one pooled cursor keeps, the least recently used going first.
PLANS_KEPT = 64
#: Idle cursors a pool keeps; one more than this closes when its query ends.
IDLE_CURSORS = 8

#: How often the watchdog repeats its interrupt once the time is up. DuckDB forgets an
#: interrupt that arrives before a statement starts executing (while it is planned, or
#: between the cardinality check's EXPLAIN and the query), and such a query would then
#: run unbounded; repeating until the query returns closes that gap.
INTERRUPT_REPEAT_S = 0.01


def hardened_config(*, memory_limit: str, threads: int, temp_dir: str | Path) -> dict[str, object]:
    """Settings fixed at connect time; :data:`LOCKING_STATEMENTS` then lock them."""
    return {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_persistent_secrets": False,
        "python_enable_replacements": False,
        "memory_limit": memory_limit,
        "max_temp_directory_size": memory_limit,
        "threads": threads,
        "temp_directory": str(temp_dir),
    }


#: Applied once the database is attached, then the configuration is locked. Files are
#: closed here, not at connect time, because attaching the database opens one. A scalar
#: subquery with several rows would raise, and whether it raises depends on the data (an
#: error oracle); DuckDB takes the first row instead. (Passing this session option at
#: connect time together with ``lock_configuration`` is refused by DuckDB, so both are
#: set here.)
LOCKING_STATEMENTS = (
    "SET GLOBAL enable_external_access = false",
    "SET GLOBAL scalar_subquery_error_on_multiple_rows = false",
    "SET GLOBAL lock_configuration = true",
)


def open_readonly(
    path: str | Path,
    *,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = DEFAULT_THREADS,
    temp_dir: str | Path | None = None,
    noise_secret: bytes | None = None,
    encryption_key: bytes | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a per-agreement database read-only on a hardened connection.

    ``noise_secret`` is the platform's aggregate-mode noise secret (see
    :func:`register_anonymiser`); ``encryption_key`` opens a database built with one, and
    then what a query spills to ``temp_dir`` is encrypted too (:mod:`query_guard.at_rest`)."""
    if temp_dir is None:
        temp_dir = tempfile.mkdtemp(prefix="qg-tmp-")
    config = hardened_config(memory_limit=memory_limit, threads=threads, temp_dir=temp_dir)
    conn = duckdb.connect(config=config)
    attach(conn, path, key=encryption_key, read_only=True)
    if encryption_key is not None:
        conn.execute("SET GLOBAL temp_file_encryption = true")
    for statement in LOCKING_STATEMENTS:
        conn.execute(statement)
    register_anonymiser(conn, noise_secret)
    return conn


def register_anonymiser(conn: duckdb.DuckDBPyConnection, noise_secret: bytes | None) -> None:
    """Give ``conn`` aggregate mode's functions, keyed per dataset version.

    Without the platform's secret (a throwaway database on the command line) the key
    is random for this connection, so its noise is consistent only while it is open.
    """
    secret = noise_secret or secrets.token_bytes(32)
    try:
        sources = conn.execute(
            f"SELECT dataset, digest FROM {PRIVATE_SCHEMA}.{SOURCES_TABLE}"
        ).fetchall()
    except duckdb.CatalogException:
        sources = []
    register(conn, {name: dataset_key(secret, name, digest) for name, digest in sources})


def _estimate(node: dict) -> int | None:
    info = node.get("extra_info")
    value = info.get("Estimated Cardinality") if isinstance(info, dict) else None
    try:
        return int(str(value).replace(",", "")) if value is not None else None
    except ValueError:
        return None


def _keeps_rows(node: dict) -> bool:
    """A join whose every condition is ``IS NOT DISTINCT FROM``: a relation joined back to
    its own groups (DuckDB's plan for a window, or aggregate mode's per-bucket decisions),
    one match per row. DuckDB cannot estimate it and guesses a product; the guard never
    lets a researcher write such a join (QG-008 wants declared equalities)."""
    info = node.get("extra_info")
    conditions = info.get("Conditions") if isinstance(info, dict) else None
    if not conditions or "JOIN" not in str(node.get("name", "")):
        return False
    parts = conditions if isinstance(conditions, list) else str(conditions).split("\n")
    return all("IS NOT DISTINCT FROM" in part for part in parts if part.strip())


def _multiplying(node: object) -> Iterator[int]:
    """Estimates of the operators in a JSON plan that expect more rows than any input.

    Scans are left out: a stored table is as large as the data the agreement gives; so
    are joins back to a relation's own groups (:func:`_keeps_rows`).
    """
    if isinstance(node, list):
        for item in node:
            yield from _multiplying(item)
        return
    if not isinstance(node, dict):
        return
    children = [c for c in node.get("children") or [] if isinstance(c, dict)]
    own = _estimate(node)
    larger = own is not None and children and own > max(_estimate(c) or 0 for c in children)
    if larger and not _keeps_rows(node):
        yield own
    yield from _multiplying(children)


def estimated_rows(cursor: duckdb.DuckDBPyConnection, sql: str) -> int | None:
    """The largest row count DuckDB's optimizer expects of an operator of ``sql``'s plan
    that produces more rows than it reads (a join, an unnest), 0 if there is none.

    Only a single SELECT is explained (``EXPLAIN`` plans, it never runs); for anything
    else ``None``, and the hardened engine refuses it when it runs.
    """
    statements = cursor.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        return None
    rows = cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchall()
    return max((n for row in rows for n in _multiplying(json.loads(row[1]))), default=0)


def check_cardinality(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    limit: int = DEFAULT_MAX_ESTIMATED_ROWS,
    estimates: Remembered[str, int | None] | None = None,
) -> int | None:
    """Refuse ``sql`` before it runs if a step of its plan that multiplies rows (see
    :func:`estimated_rows`) is estimated past ``limit`` rows.

    Returns the estimate, taken from ``estimates`` (what is kept for the cursor's file,
    which never changes while it is open) where it holds one: planning a query for its
    estimate cost the worker more than running a small one. The refusal does not echo the
    estimate: it derives from the stored data's statistics.
    """
    if estimates is None:
        estimate = estimated_rows(cursor, sql)
    else:
        estimate = estimates.get(sql, lambda: estimated_rows(cursor, sql))
    if estimate is not None and estimate > limit:
        raise PolicyViolation(
            CARDINALITY_RULE,
            RESOURCES_ARTICLE,
            f"the query's plan is estimated to produce more than {limit:,} rows in one step "
            "(usually a join that multiplies rows: a self-join, or a join on a key that "
            "repeats on both sides); aggregate each side in a WITH query before joining, "
            "filter first, or join on a key that is unique on one side",
        )
    return estimate


class _Watchdog:
    """Interrupts each watched cursor once its time is up, then again every
    :data:`INTERRUPT_REPEAT_S` until it is no longer watched, so that an interrupt DuckDB
    forgot (one that came before the statement started) is repeated rather than lost.

    One thread serves every query of the process: starting a thread per query cost more
    than a small query under load. An interrupt is sent holding the lock that
    :meth:`stop` takes, so none reaches a cursor after its query stopped being watched.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start empty, with no thread yet (also in a forked child, which has none)."""
        self._changed = threading.Condition()
        self._due: dict[int, tuple[float, duckdb.DuckDBPyConnection]] = {}
        self._tickets = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, cursor: duckdb.DuckDBPyConnection, timeout_s: float) -> int:
        """Interrupt ``cursor`` from ``timeout_s`` seconds on; the ticket for :meth:`stop`."""
        with self._changed:
            ticket = next(self._tickets)
            self._due[ticket] = (time.monotonic() + timeout_s, cursor)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, daemon=True)
                self._thread.start()
            self._changed.notify()
        return ticket

    def stop(self, ticket: int) -> None:
        with self._changed:
            self._due.pop(ticket, None)

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for ticket, (due, cursor) in list(self._due.items()):
                    if due <= now:
                        with contextlib.suppress(duckdb.Error):  # never end the loop early
                            cursor.interrupt()
                        self._due[ticket] = (now + INTERRUPT_REPEAT_S, cursor)
                soonest = min((due for due, _ in self._due.values()), default=None)
                self._changed.wait(None if soonest is None else soonest - now)


class PlannedCursor:
    """A cursor and the statements it has prepared, by their text.

    DuckDB plans a compiled aggregate-mode statement (dozens of WITH entries) in about as
    long as it runs a small query over ten million rows; the worker answers the same
    notebook cells again and again, and the file never changes while it is open, so a
    plan made once (``PREPARE``) is run again with ``EXECUTE``.
    """

    def __init__(self, cursor: duckdb.DuckDBPyConnection, keeps: int = PLANS_KEPT) -> None:
        self.cursor = cursor
        self._keeps = keeps
        self._names: OrderedDict[str, str] = OrderedDict()
        self._numbers = itertools.count()

    def relation(self, sql: str) -> duckdb.DuckDBPyRelation:
        """``sql`` run from its prepared plan, prepared first if this cursor has none (or
        planned for this once on a cursor that keeps none)."""
        if not self._keeps:
            return self.cursor.sql(sql)
        name = self._names.get(sql)
        if name is None:
            name = f"__qg_plan{next(self._numbers)}"
            self.cursor.execute(f"PREPARE {name} AS {sql}")
            self._names[sql] = name
            while len(self._names) > self._keeps:
                self.cursor.execute(f"DEALLOCATE PREPARE {self._names.popitem(last=False)[1]}")
        self._names.move_to_end(sql)
        return self.cursor.sql(f"EXECUTE {name}")


class Plans:
    """Cursors on one open database that keep their prepared statements between queries.

    A cursor runs one query at a time, so each query takes an idle one (or a new one) and
    gives it back. Kept with the open file, and closed before it, as the row estimates are.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn
        self._idle: list[PlannedCursor] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def cursor(self) -> Iterator[PlannedCursor]:
        with self._lock:
            planned = self._idle.pop() if self._idle else None
        planned = planned or PlannedCursor(self._conn.cursor())
        try:
            yield planned
        finally:
            with self._lock:
                spare = len(self._idle) >= IDLE_CURSORS
                if not spare:
                    self._idle.append(planned)
            if spare:
                planned.cursor.close()

    def close(self) -> None:
        with self._lock:
            for planned in self._idle:
                planned.cursor.close()
            self._idle.clear()


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.reset)


def run_query(
    conn: duckdb.DuckDBPyConnection,
    sql: str,
    timeout_s: float,
    *,
    max_estimated_rows: int | None = DEFAULT_MAX_ESTIMATED_ROWS,
    planned: str | None = None,
    estimates: Remembered[str, int | None] | None = None,
    plans: Plans | None = None,
) -> pa.Table:
    """Run ``sql`` and fetch the result as Arrow, interrupting it after ``timeout_s`` seconds.

    Each query runs on its own cursor (same database, same locked settings), so
    queries from several threads never share a pending result. Unless
    ``max_estimated_rows`` is ``None``, :func:`check_cardinality` first refuses a query
    whose plan is estimated past that many rows (within the same timeout): the plan of
    ``planned`` where ``sql`` was compiled from it (aggregate mode's checked query, whose
    joins are the only ones of the compiled statement that can multiply rows, and whose
    plan costs DuckDB a fraction of the compiled statement's), else of ``sql``; ``estimates``
    keeps the estimates of ``conn``'s file (:class:`~query_guard.service.connections.Opened`)
    and ``plans`` its prepared statements, on whose cursors the query then runs.
    """
    with plans.cursor() if plans is not None else _fresh(conn) as running:
        return _run(running, sql, timeout_s, max_estimated_rows, planned, estimates)


@contextlib.contextmanager
def _fresh(conn: duckdb.DuckDBPyConnection) -> Iterator[PlannedCursor]:
    """A cursor of its own for one query, closed after it (nothing kept)."""
    cursor = conn.cursor()
    try:
        yield PlannedCursor(cursor, keeps=0)
    finally:
        cursor.close()


def _run(
    running: PlannedCursor,
    sql: str,
    timeout_s: float,
    max_estimated_rows: int | None,
    planned: str | None,
    estimates: Remembered[str, int | None] | None,
) -> pa.Table:
    cursor = running.cursor
    ticket = _WATCHDOG.watch(cursor, timeout_s)
    try:
        if max_estimated_rows is not None:
            check_cardinality(cursor, planned or sql, max_estimated_rows, estimates)
        return split_suppression(running.relation(sql).to_arrow_table())
    except duckdb.InterruptException as exc:
        raise PolicyViolation(
            TIMEOUT_RULE,
            RESOURCES_ARTICLE,
            f"the query ran longer than the {timeout_s:g} s allowed per query and was stopped; "
            "narrow it or aggregate earlier",
        ) from exc
    except (duckdb.BinderException, duckdb.ParserException, duckdb.CatalogException) as exc:
        # About the query text, never about data values: safe to pass on.
        raise SandboxError(str(exc).splitlines()[0], rule=QUERY_ERROR_RULE) from exc
    except duckdb.OutOfMemoryException as exc:
        # Names the limit, never a value: the same text whatever the data.
        raise SandboxError(
            "the query needed more memory or temporary disk than this workspace allows and "
            "was stopped; aggregate earlier, filter first or select fewer columns",
            rule=QUERY_ERROR_RULE,
            article=RESOURCES_ARTICLE,
        ) from exc
    except duckdb.Error as exc:
        # Conversion and range errors quote the offending value: never pass them on.
        raise SandboxError(
            f"the query failed while running ({type(exc).__name__})", rule=QUERY_ERROR_RULE
        ) from exc
    finally:
        _WATCHDOG.stop(ticket)


def measure_timeout_overshoot(conn: duckdb.DuckDBPyConnection, sql: str, timeout_s: float) -> float:
    """Seconds until :func:`run_query` gave up on ``sql``, divided by ``timeout_s``.

    For the benchmark's report (target: at most 1.1). DuckDB sees an interrupt only
    between chunks of rows, so a query whose single chunk is slow overshoots. The
    cardinality check is off here so that a runaway join reaches its timeout; below
    1.0 means the query finished (or failed) before the limit.
    """
    started = time.perf_counter()
    with contextlib.suppress(SandboxError):
        run_query(conn, sql, timeout_s, max_estimated_rows=None)
    return (time.perf_counter() - started) / timeout_s
