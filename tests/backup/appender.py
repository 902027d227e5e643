"""Run as a separate process: append audit events to the database at argv[1] until killed.

It prints ``ready`` after its first event, so the test starts the backup
while this process is known to be writing.
"""

from __future__ import annotations

import sys

from sandbox.audit.record import record
from sandbox.db.base import make_engine, make_sessionmaker, transaction


def main(url: str) -> None:
    factory = make_sessionmaker(make_engine(url))
    n = 0
    while True:
        with transaction(factory) as session:
            record(session, actor="appender", action="test.append", object=f"n:{n}")
        if n == 0:
            print("ready", flush=True)
        n += 1


if __name__ == "__main__":
    main(sys.argv[1])
