"""Verification speed and memory on a long record: ``python -m tests.audit.bench_verify [N] [URL]``.

Builds a valid chain of N events (default 100 000) by bulk insert into a fresh
SQLite file (or the empty database at URL, whose audit tables it creates), then
times :func:`verify_chain` over it. Not a test: it asserts nothing about time.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from sandbox.audit.canonical import GENESIS_HASH, canonical_json, event_hash
from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import verify_chain
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from tests.audit.conftest import create_audit_tables


def build(url: str, count: int, chunk: int = 10_000) -> None:
    create_audit_tables(url)
    factory = make_sessionmaker(make_engine(url))
    prev = GENESIS_HASH
    for start in range(1, count + 1, chunk):
        rows = []
        for seq in range(start, min(start + chunk, count + 1)):
            details = canonical_json(
                {"query": f"SELECT district, count(*) FROM visits -- {seq}", "rows": seq % 97}
            )
            fields = {
                "seq": seq,
                "at": f"2026-05-01T08:00:00.{seq % 1_000_000:06d}Z",
                "actor": "alice",
                "action": "query.run",
                "object": "agreement:AGR-2026-0001",
            }
            digest = event_hash(prev_hash=prev, details=details, **fields)
            rows.append({**fields, "details": details, "prev_hash": prev, "hash": digest})
            prev = digest
        with transaction(factory) as session:
            session.execute(AuditEvent.__table__.insert(), rows)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    build(url, count)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    factory = make_sessionmaker(make_engine(url))
    began = time.perf_counter()
    with factory() as session:
        result = verify_chain(session)
    elapsed = time.perf_counter() - began
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert result.ok and result.count == count, result.problems[:5]
    print(
        f"{url.split(':')[0]}: verified {count} events in {elapsed:.1f} s = "
        f"{count / elapsed:,.0f} events/s; peak RSS grew by {grown_mib:.0f} MiB"
    )


if __name__ == "__main__":
    main()
