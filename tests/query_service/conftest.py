"""A platform with published data, three provisioned agreements and their workspace tokens.

The platform database is the control-plane tests' (SQLite, and PostgreSQL when
available); each agreement's DuckDB file is built by the real provisioning.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.accounts.service import issue_workspace_token
from sandbox.agreements.service import get_agreement, import_agreement
from sandbox.apps.platform import create_app
from sandbox.db.base import transaction
from sandbox.provisioning.service import provision
from sandbox.settings import Settings
from tests.control_plane.conftest import (  # noqa: F401  (fixtures)
    catalog_dir,
    client,
    db_url,
    factory,
    login,
    settings,
    users,
)
from tests.control_plane.helpers import agreement, open_agreement_database, publish_all
from tests.web.conftest import SERVED

AGGREGATE = "AGR-QS-AGG"
RECORD = "AGR-QS-REC"
BOBS = "AGR-QS-BOB"
RECORD_MAX_ROWS = 20


@dataclass
class World:
    settings: Settings
    factory: sessionmaker[Session]
    users: dict[str, User]
    tokens: dict[str, str]

    def database(self, agreement_id: str) -> Path:
        return self.settings.agreements_dir / f"{agreement_id}.duckdb"

    def direct(self, agreement_id: str, sql: str, tmp: Path) -> list[tuple]:
        """Compute ``sql`` straight on a copy of the agreement's file, without guard or service."""
        copy = tmp / f"direct-{agreement_id}.duckdb"
        shutil.copy(self.database(agreement_id), copy)
        con = open_agreement_database(self.settings, agreement_id, copy)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


def assert_close_to(got: list[tuple], expected: list[tuple], keys: int = 1) -> None:
    """Aggregate mode answers the same groups as the raw query, each value within the
    perturbation a small table can carry (flattening plus up to 3 sd per noise layer,
    in units of the largest contributions: a few visits or a few costs here)."""
    assert [g[:keys] for g in got] == [e[:keys] for e in expected]
    for g, e in zip(got, expected, strict=True):
        for value, raw in zip(g[keys:], e[keys:], strict=True):
            assert value == pytest.approx(raw, rel=0.25, abs=15), (g, e)


def _agreements() -> list:
    columns = {"clinic_visits": {"columns": ["patient_id", "district", "cost"]}}
    return [
        agreement(id=AGGREGATE, datasets=columns),
        agreement(
            id=RECORD,
            mode="record",
            datasets=columns,
            disclosure={"max_result_rows": RECORD_MAX_ROWS},
        ),
        agreement(id=BOBS, researchers=["bob"], datasets=columns),
    ]


@pytest.fixture
def world(
    settings: Settings,
    factory: sessionmaker[Session],  # noqa: F811
    users: dict[str, User],
    catalog_dir: Path,
) -> World:  # noqa: F811
    publish_all(factory, users, settings, catalog_dir)
    tokens = {}
    for spec in _agreements():
        with transaction(factory) as session:
            import_agreement(session=session, actor=users["health"], agreement=spec)
            provision(session=session, settings=settings, actor=users["ops"], agreement_id=spec.id)
            researcher = users[spec.researchers[0]]
            tokens[spec.id], _ = issue_workspace_token(
                session, researcher, get_agreement(session, spec.id)
            )
    return World(settings, factory, users, tokens)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def qs(world: World, client: TestClient) -> TestClient:  # noqa: F811
    return client


def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on a real uvicorn bound to 127.0.0.1 in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    SERVED[base] = app  # so that a sign-in's second step finds its key store
    try:
        yield base
    finally:
        del SERVED[base]
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def live_url(world: World) -> Iterator[str]:
    """The platform app (with ``/qs`` mounted) on a real loopback socket."""
    yield from serve(create_app(world.settings))
