"""Benchmark the service hop: a query through the HTTP query service and back as a DataFrame.

Run ``python -m benchmarks.bench_service`` (after, or instead of,
``benchmarks.bench_guard``, whose dataset, agreement and queries it reuses).
It starts a query worker for the bench agreement on a real uvicorn bound to
127.0.0.1, with a throwaway SQLite platform database, and times for each
query:

- ``rewr``: the guard's rewritten query on a plain DuckDB connection;
- ``svc``: ``client.connect(...).sql(query)``: HTTP, token check, guard,
  hardened engine, audit record and query log, Arrow IPC, pandas decode.

It prints the per-query ratio svc/rewr and the median.
"""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
import threading
from datetime import date, timedelta
from pathlib import Path

import duckdb
import uvicorn

from benchmarks.bench_guard import QUERIES, THREADS, _best, prepare
from query_guard.client import Connection, connect
from query_guard.guard import GuardContext, check_query
from query_guard.service.worker import create_worker_app
from sandbox.accounts.models import Role
from sandbox.accounts.service import create_user, issue_workspace_token
from sandbox.agreements.models import AgreementRecord
from sandbox.catalog.models import Dataset
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.registry import metadata
from sandbox.db.schema import ensure_schema
from sandbox.settings import Settings


def _platform(ctx: GuardContext, database: Path, data_dir: Path) -> tuple[Settings, str]:
    """A platform holding the bench dataset, an active agreement and its workspace token."""
    settings = Settings(environment="test", data_dir=data_dir)
    ensure_schema(settings.db_url)
    engine = make_engine(settings.db_url)
    metadata.create_all(engine)
    settings.agreements_dir.mkdir(parents=True)
    os.link(database, settings.agreements_dir / f"{ctx.agreement.id}.duckdb")
    today = date.today()
    spec = ctx.agreement.model_copy(
        update={"valid_from": today - timedelta(days=1), "valid_until": today + timedelta(days=30)}
    )
    entry = ctx.catalog["visits"]
    with transaction(make_sessionmaker(engine)) as session:
        user = create_user(
            session=session,
            username="r",
            password="bench-password-1",
            role=Role.researcher,
            display_name="R",
        )
        session.add(
            Dataset(
                name=entry.name,
                provider=entry.provider,
                open_class=entry.open_class,
                entry=entry.model_dump(mode="json"),
                published=True,  # as if the authority had approved it (catalogue review)
            )
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
    ctx, guarded_db, plain_db = prepare()
    plain = duckdb.connect(str(plain_db), read_only=True, config={"threads": THREADS})
    with tempfile.TemporaryDirectory(prefix="bench-qs-", dir=guarded_db.parent) as tmp:
        settings, token = _platform(ctx, guarded_db.resolve(), Path(tmp))
        url, server = _serve(settings, ctx.agreement.id)
        db = connect(url, token, progress=None)
        print(f"{'query':<60} {'rewr s':>7} {'svc s':>7} {'svc/rewr':>8}")
        ratios = []
        for sql in QUERIES:
            rewritten = check_query(sql, ctx).sql
            rewr = _best(lambda s=rewritten: plain.sql(s).to_arrow_table())
            svc = _best(lambda s=sql: service_path(s, db))
            ratios.append(svc / rewr)
            print(f"{sql[:60]:<60} {rewr:7.3f} {svc:7.3f} {ratios[-1]:8.2f}")
        db.close()
        server.should_exit = True
    print(f"\nmedian service-hop/rewritten-on-raw: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
