"""Benchmark the service hop: a query through the HTTP query service and back as a DataFrame.

Run ``python -m benchmarks.bench_service`` (after, or instead of,
``benchmarks.bench_guard``, whose dataset, agreement and queries it reuses).
It starts a query worker for the bench agreement on a real uvicorn bound to
127.0.0.1, with a throwaway SQLite platform database holding the bench's noise
secret, and times for each query, one at a time on the big data:

- ``guard``: ``bench_guard.guarded_path`` in this process: the guard's decision and
  the compiled query on the hardened engine (the compiled SQL reads the agreement
  database's private tables, so it runs only there);
- ``svc``: ``client.connect(...).sql(query)``: HTTP, token check, the same decision
  and run, audit record and query log, Arrow IPC, pandas decode.

It prints the per-query ratio svc/guard and the median: what the service adds to one
query. ``benchmarks.bench_load`` measures the worker under many clients.
"""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
import threading
from datetime import date, timedelta
from pathlib import Path

import uvicorn

from benchmarks.bench_guard import (
    BENCH_DIR,
    NOISE_SECRET,
    QUERIES,
    THREADS,
    Worker,
    _best,
    guarded_path,
    prepare,
)
from query_guard.client import Connection, connect
from query_guard.engine import open_readonly
from query_guard.guard import GuardContext
from query_guard.keys import NOISE_SECRET_FILE
from sandbox.accounts.models import Role
from sandbox.accounts.service import create_user, issue_workspace_token
from sandbox.agreements.models import AgreementRecord
from sandbox.apps.tables import metadata
from sandbox.apps.worker import create_worker_app
from sandbox.catalog.models import Dataset
from sandbox.db.base import make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import platform_engine
from sandbox.settings import Settings


def _platform(ctx: GuardContext, database: Path, data_dir: Path) -> tuple[Settings, str]:
    """A platform holding the bench datasets, an active agreement and its workspace token."""
    settings = Settings(environment="test", data_dir=data_dir)
    ensure_schema(settings.db_url)
    engine = platform_engine(settings)
    metadata.create_all(engine)
    settings.agreements_dir.mkdir(parents=True)
    os.link(database, settings.agreements_dir / f"{ctx.agreement.id}.duckdb")
    settings.keys_dir.mkdir(parents=True, exist_ok=True)  # the noise the database was built for
    (settings.keys_dir / NOISE_SECRET_FILE).write_bytes(NOISE_SECRET)
    today = date.today()
    spec = ctx.agreement.model_copy(
        update={"valid_from": today - timedelta(days=1), "valid_until": today + timedelta(days=30)}
    )
    with transaction(make_sessionmaker(engine)) as session:
        user = create_user(
            session=session,
            username="r",
            password="bench-password-1",
            role=Role.researcher,
            display_name="R",
        )
        session.add_all(
            Dataset(
                name=entry.name,
                provider=entry.provider,
                open_class=entry.open_class,
                entry=entry.model_dump(mode="json"),
                published=True,  # as if the authority had approved it (catalogue review)
            )
            for entry in ctx.catalog.values()
        )
        rec = AgreementRecord(
            id=spec.id,
            provider=spec.provider,
            valid_from=spec.valid_from,
            valid_until=spec.valid_until,
            spec=spec.model_dump(mode="json"),
        )
        session.add(rec)
        session.flush()
        token, _ = issue_workspace_token(session, user, rec)
    engine.dispose()
    return settings, token


def _serve(settings: Settings, agreement_id: str) -> tuple[str, uvicorn.Server]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(
            create_worker_app(settings, agreement_id), log_level="warning", lifespan="off"
        )
    )
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        threading.Event().wait(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/qs", server


def service_path(sql: str, db: Connection) -> object:
    """The full guarded path as a notebook sees it: through the query service, as pandas."""
    return db.sql(sql)


def main() -> None:
    ctx, guarded_db, _ = prepare()
    worker = Worker(
        open_readonly(
            guarded_db, threads=THREADS, temp_dir=BENCH_DIR / "tmp", noise_secret=NOISE_SECRET
        )
    )
    with tempfile.TemporaryDirectory(prefix="bench-qs-", dir=guarded_db.parent) as tmp:
        settings, token = _platform(ctx, guarded_db.resolve(), Path(tmp))
        url, server = _serve(settings, ctx.agreement.id)
        db = connect(url, token, progress=None)
        print(f"{'query':<60} {'guard s':>7} {'svc s':>7} {'svc/guard':>9}")
        ratios = []
        for sql in QUERIES:
            guard = _best(lambda s=sql: guarded_path(s, ctx, worker))
            svc = _best(lambda s=sql: service_path(s, db))
            ratios.append(svc / guard)
            print(f"{sql[:60]:<60} {guard:7.3f} {svc:7.3f} {ratios[-1]:9.2f}")
        db.close()
        server.should_exit = True
    print(f"\nmedian service hop / guarded path in process: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
