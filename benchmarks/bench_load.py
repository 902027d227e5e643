"""Benchmark one query worker under load against its physical limit: a bare endpoint.

Run ``python -m benchmarks.bench_load`` (issue 12). The demo platform is seeded into a
throwaway directory, and ``BENCH_LOAD_CLIENTS`` clients (default 20) each send
``BENCH_LOAD_QUERIES`` (default 500) small queries, a mix of shapes, one after the other,
over HTTP on 127.0.0.1, once for each of the demo's two agreements:

- *record mode* (bob's agreement): the guard rewrites each query onto the agreement's
  views (pseudonyms, row filter, row cap) and what runs costs about what the raw query
  costs, so the ratio measures what the platform adds to every query;
- *aggregate mode* (alice's agreement): each query is compiled into the anonymising
  statement of issue 11, which on the demo's 50,000 rows costs DuckDB about ten times the
  raw query (per-entity totals, noisy thresholds, flattening): its ratio adds that
  engine cost to the platform's (``bench_guard`` measures the engine cost alone, at scale).

Each is sent to:

- ``guarded``: a real ``sandbox query-worker`` process for the agreement: token check,
  guard, hardened engine, the query's record (query log, early warnings, audit event,
  committed together and linked into the chain) and the Arrow answer;
- ``bare``: a process serving the same query texts through a FastAPI endpoint with no
  guard and no record on the same DuckDB file, read-only, one cursor per request, Arrow
  out: the same transport (uvicorn, plain HTTP on loopback like the worker) and the same
  data, so the ratio is the cost of everything the platform adds.

All run on the platform database of SQLite, and again on a fresh PostgreSQL database
when ``SANDBOX_TEST_POSTGRES_URL`` names a server. Reported for each: throughput, p50 and
p99 latency and errors, the machine's load average as each side ended (the bench's own
processes included), the ratios against bare, and whether the record holds exactly one
``query`` event and one query-log row per answered query with the chain verifying.
Targets: 0 errors, guarded throughput >= 50 % of bare, guarded p99 <= 3x bare p99.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
from fastapi import FastAPI, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from query_guard.at_rest import attach
from query_guard.service.models import QueryLog
from sandbox.accounts.models import User
from sandbox.accounts.service import issue_workspace_token
from sandbox.agreements.service import get_agreement
from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import verify_chain
from sandbox.db.base import make_sessionmaker, read_only, transaction
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import field_keys, platform_engine
from sandbox.demo.seed import seed_demo
from sandbox.keys.store import key_store
from sandbox.settings import Settings
from sandbox.workcalendar import calendar_from_settings

CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "20"))
QUERIES_EACH = int(os.environ.get("BENCH_LOAD_QUERIES", "500"))
ARROW_STREAM = "application/vnd.apache.arrow.stream"


@dataclass(frozen=True)
class Scenario:
    """One demo agreement, its researcher, and the queries of the shapes a notebook sends."""

    name: str
    agreement: str
    researcher: str
    queries: tuple[str, ...]


SCENARIOS = (
    Scenario(
        "record mode",
        "AGR-2026-0002",
        "bob",
        (
            "SELECT district, count(*) AS n FROM enterprise_registry GROUP BY district",
            "SELECT district, avg(registered_capital) AS mean_capital "
            "FROM enterprise_registry GROUP BY district",
            "SELECT count(*) AS n FROM enterprise_registry WHERE employees >= 50",
            "SELECT district, sum(employees) AS staff FROM enterprise_registry "
            "WHERE established >= DATE '2015-01-01' GROUP BY district",
            "SELECT date_trunc('year', established) AS year, count(*) AS n "
            "FROM enterprise_registry GROUP BY 1 ORDER BY 1",
            "SELECT credit_code, registered_capital FROM enterprise_registry "
            "ORDER BY registered_capital DESC LIMIT 100",
        ),
    ),
    Scenario(
        "aggregate mode",
        "AGR-2026-0001",
        "alice",
        (
            "SELECT district, count(*) AS n FROM outpatient_visits GROUP BY district",
            "SELECT department, avg(cost) AS mean_cost FROM outpatient_visits GROUP BY department",
            "SELECT count(*) AS n FROM outpatient_visits WHERE cost >= 200",
            "SELECT district, sum(cost) AS total FROM outpatient_visits "
            "WHERE visit_date >= DATE '2025-01-01' GROUP BY district",
            "SELECT date_trunc('month', visit_date) AS month, count(*) AS n "
            "FROM outpatient_visits GROUP BY 1 ORDER BY 1",
            "SELECT diagnosis_group, count(DISTINCT patient_id) AS patients "
            "FROM outpatient_visits GROUP BY diagnosis_group",
        ),
    ),
)
TARGET_THROUGHPUT = 0.5
TARGET_P99 = 3.0


# --- the bare endpoint -------------------------------------------------------------------


class BareQuery(BaseModel):
    sql: str


def bare_app(database: Path, key: bytes | None) -> FastAPI:
    """The anchor: the query text straight on the agreement's file (decrypted with its key,
    as the worker does), answered as Arrow."""
    conn = duckdb.connect()
    attach(conn, database, key=key, read_only=True)
    app = FastAPI()

    @app.post("/query")
    def query(body: BareQuery) -> Response:
        table = conn.cursor().sql(body.sql).to_arrow_table()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)

    return app


def serve_bare(database: Path, port: int) -> None:
    """Serve :func:`bare_app` as the worker serves itself (``uvicorn.run`` defaults); the
    key comes from the platform's key store, named by the same environment as the worker's."""
    import uvicorn

    key = key_store(Settings()).data_key(database.stem)
    uvicorn.run(bare_app(database, key), host="127.0.0.1", port=port)


# --- processes ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _process(command: list[str], env: dict[str, str], log: Path, probe: str) -> Iterator[str]:
    """Start ``command`` (its port last), wait until ``probe`` answers HTTP, yield its base
    URL, and stop it with SIGTERM (the worker links what waits in its outbox then)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, str(port)], env={**os.environ, **env}, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{command[:3]} ended early:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(url + probe, timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{command[:3]} never answered") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the load ----------------------------------------------------------------------------


@dataclass
class Run:
    """One side's figures: every answered query's latency, and what was not answered."""

    elapsed: float = 0.0
    #: The machine's 1-minute load average when the run ended (other work shares the cores).
    load_average: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the answered queries' latencies (NaN when none was)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def _client(
    url: str, headers: dict[str, str], queries: tuple[str, ...], index: int, run: Run
) -> None:
    """One researcher's session: ``QUERIES_EACH`` queries, one after the other."""
    latencies, errors = [], Counter()
    with httpx.Client(base_url=url, headers=headers, timeout=300) as http:
        for i in range(QUERIES_EACH):
            sql = queries[(index + i) % len(queries)]
            start = time.perf_counter()
            try:
                r = http.post("/query", json={"sql": sql})
            except httpx.TransportError as exc:
                errors[f"transport: {type(exc).__name__}"] += 1
                continue
            if r.status_code == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors[f"{r.status_code}: {r.text[:200]}"] += 1
    with run.lock:
        run.latencies += latencies
        run.errors += errors


def load(url: str, headers: dict[str, str], queries: tuple[str, ...]) -> Run:
    """``CLIENTS`` sessions at once, each on its own connection."""
    run = Run()
    threads = [
        threading.Thread(target=_client, args=(url, headers, queries, i, run))
        for i in range(CLIENTS)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.elapsed = time.perf_counter() - start
    run.load_average = os.getloadavg()[0]
    return run


# --- the platform ------------------------------------------------------------------------


def platform(db_url: str, data_dir: Path) -> tuple[Settings, dict[str, str]]:
    """The seeded demo platform and a workspace token for each scenario, by agreement."""
    settings = Settings(environment="test", data_dir=data_dir, database_url=db_url)
    ensure_schema(db_url, field_keys(settings))
    engine = platform_engine(settings)  # sealed fields under the key store the worker reads
    with transaction(make_sessionmaker(engine)) as session:
        seed_demo(session, settings, calendar_from_settings(settings))
    tokens = {}
    with transaction(make_sessionmaker(engine)) as session:
        for scenario in SCENARIOS:
            user = session.scalars(select(User).where(User.username == scenario.researcher)).one()
            agreement = get_agreement(session, scenario.agreement)
            tokens[scenario.agreement], _ = issue_workspace_token(session, user, agreement)
    engine.dispose()
    return settings, tokens


def recorded(settings: Settings, agreement: str) -> tuple[int, int, bool]:
    """``query`` events of the agreement, its query-log rows, and whether the chain verifies."""
    engine = platform_engine(settings)
    with read_only(make_sessionmaker(engine)) as session:
        events = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "query", AuditEvent.object == f"agreement:{agreement}")
        )
        logged = session.scalar(
            select(func.count()).select_from(QueryLog).where(QueryLog.agreement_id == agreement)
        )
        ok = verify_chain(session).ok
    engine.dispose()
    return events or 0, logged or 0, ok


# --- report ------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _line(name: str, run: Run) -> str:
    return (
        f"  {name:<8} {len(run.latencies):>6} answered {sum(run.errors.values()):>5} errors "
        f"{run.elapsed:8.1f} s {run.throughput:8.1f} q/s  p50 {run.quantile(0.5) * 1e3:8.1f} ms  "
        f"p99 {run.quantile(0.99) * 1e3:8.1f} ms  load {run.load_average:.2f}"
    )


def report(title: str, bare: Run, guarded: Run, record: tuple[int, int, bool]) -> bool:
    """Print one backend's figures beside the targets; True when every target is met."""
    total = CLIENTS * QUERIES_EACH
    throughput = guarded.throughput / bare.throughput
    p99 = guarded.quantile(0.99) / bare.quantile(0.99)
    events, logged, chain = record
    answered = len(guarded.latencies)
    errors = sum(guarded.errors.values()) + sum(bare.errors.values())
    once = events == logged == answered
    print(f"\n{title}: {CLIENTS} clients x {QUERIES_EACH} queries ({total} each side)")
    print(_line("bare", bare))
    print(_line("guarded", guarded))
    for message, count in (bare.errors + guarded.errors).most_common(5):
        print(f"    {count} x {message}")
    print(f"  errors: {errors} (target 0: {_verdict(errors == 0)})")
    print(
        f"  throughput guarded / bare: {throughput:.2f} "
        f"(target >= {TARGET_THROUGHPUT}: {_verdict(throughput >= TARGET_THROUGHPUT)})"
    )
    print(f"  p50 guarded / bare: {guarded.quantile(0.5) / bare.quantile(0.5):.2f}")
    print(
        f"  p99 guarded / bare: {p99:.2f} (target <= {TARGET_P99}: {_verdict(p99 <= TARGET_P99)})"
    )
    print(
        f"  record: {events} query events, {logged} query-log rows for {answered} answered "
        f"(one each: {_verdict(once)}); chain verifies: {_verdict(chain)}"
    )
    return errors == 0 and throughput >= TARGET_THROUGHPUT and p99 <= TARGET_P99 and once and chain


def bench(backend: str, db_url: str, root: Path) -> list[bool]:
    """Seed the platform on ``db_url``; for each scenario load the bare endpoint, then the
    agreement's worker."""
    settings, tokens = platform(db_url, root / "var")
    env = {
        "SANDBOX_DATABASE_URL": db_url,
        "SANDBOX_DATA_DIR": str(settings.data_dir),
        "SANDBOX_ENVIRONMENT": "test",
    }
    sandbox = str(Path(sys.executable).with_name("sandbox"))
    met = []
    for scenario in SCENARIOS:
        database = settings.agreements_dir / f"{scenario.agreement}.duckdb"
        bare_command = [sys.executable, "-m", "benchmarks.bench_load", "--serve-bare"]
        with _process([*bare_command, str(database)], env, root / "bare.log", "/docs") as url:
            bare = load(url, {}, scenario.queries)
        worker = [sandbox, "query-worker", "--agreement", scenario.agreement, "--port"]
        headers = {"Authorization": f"Bearer {tokens[scenario.agreement]}"}
        with _process(worker, env, root / "worker.log", "/qs/agreement") as url:
            guarded = load(f"{url}/qs", headers, scenario.queries)
        title = f"{backend}, {scenario.name} ({scenario.agreement})"
        met.append(report(title, bare, guarded, recorded(settings, scenario.agreement)))
    return met


def main() -> int:
    print(
        f"one query worker vs a bare FastAPI endpoint on the same DuckDB file; "
        f"{len(SCENARIOS[0].queries)} query shapes in turn per agreement, Arrow answers, "
        "plain HTTP on 127.0.0.1"
    )
    met = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        (root / "sqlite").mkdir()
        met += bench("SQLite", f"sqlite:///{root / 'sqlite' / 'platform.db'}", root / "sqlite")
        if os.environ.get("SANDBOX_TEST_POSTGRES_URL"):
            from tests.databases import fresh_postgres_database

            (root / "postgres").mkdir()
            with fresh_postgres_database() as url:
                met += bench("PostgreSQL", url, root / "postgres")
        else:
            print("\nPostgreSQL: skipped (SANDBOX_TEST_POSTGRES_URL is not set)")
    print(f"\nall targets: {_verdict(all(met))}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-bare"]:
        serve_bare(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(main())
