"""The workspace's hop to its query worker over TLS, with a real ``sandbox query-worker``
process and the real notebook client on loopback: the worker serves a certificate for the
address it listens on, the client verifies it against the platform's CA (as the workspace
does, from ``SANDBOX_QUERY_CA``), a client trusting anything else fails the handshake,
plain HTTP to the worker gets no answer, and production refuses a worker without TLS."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hub_config.hooks import _on_gateway, query_service_answers
from query_guard.client import QueryRefused, connect
from sandbox.tls import development
from tests.query_service.conftest import AGGREGATE, World
from tests.waiting import eventually
from tests.workspaces.hub import free_port

SANDBOX = str(Path(sys.executable).with_name("sandbox"))
BY_DISTRICT = "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district"


def _worker_env(world: World, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SANDBOX_DATABASE_URL": world.settings.db_url,
        "SANDBOX_DATA_DIR": str(world.settings.data_dir),
        "SANDBOX_ENVIRONMENT": "test",
        **extra,
    }


def test_the_client_reaches_its_worker_over_tls_it_verifies_against_the_platform_ca(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = development.server_certificate(tmp_path / "tls", "worker", ["127.0.0.1"])
    port = free_port()
    command = [SANDBOX, "query-worker", "--agreement", AGGREGATE, "--port", str(port)]
    command += ["--tls-cert", str(issued.cert), "--tls-key", str(issued.key)]
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(command, env=_worker_env(world), stdout=out, stderr=out)
    url = f"https://127.0.0.1:{port}/qs"
    try:
        ca = str(issued.ca)
        eventually(lambda: asyncio.run(query_service_answers(url, ca)), "the worker", limit=120)

        # As in the workspace: URL, token and CA from the environment the hub sets.
        monkeypatch.setenv("SANDBOX_QUERY_URL", url)
        monkeypatch.setenv("SANDBOX_TOKEN", world.tokens[AGGREGATE])
        monkeypatch.setenv("SANDBOX_QUERY_CA", ca)
        with connect(progress=None) as db:
            assert db.scope()["id"] == AGGREGATE
            assert len(db.sql(BY_DISTRICT)) > 0

        # Trusting the system's authorities, or another CA, the handshake fails.
        monkeypatch.delenv("SANDBOX_QUERY_CA")
        other = development.server_certificate(tmp_path / "other", "x", ["127.0.0.1"]).ca
        for trusted in (None, str(other)):
            with (
                connect(ca=trusted, progress=None) as db,
                pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
            ):
                db.scope()
        assert not asyncio.run(query_service_answers(url))  # the hub's probe verifies too

        # Plain HTTP to the TLS port: the handshake fails, no request is read or answered.
        plain = url.replace("https://", "http://")
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{plain}/query", json={"sql": "SELECT 1"}, timeout=10)
        # And the client never sends its token in clear when it was given a CA.
        with pytest.raises(QueryRefused) as refused:
            connect(plain, world.tokens[AGGREGATE], ca=ca, progress=None)
        assert refused.value.rule == "client-tls"
    finally:
        worker.terminate()
        worker.wait(30)


def test_production_refuses_a_worker_without_tls(world: World) -> None:
    port = str(free_port())
    env = _worker_env(
        world,
        SANDBOX_ENVIRONMENT="production",
        SANDBOX_SECRET_KEY="a-production-secret-for-this-test-only-0123456789",
    )
    done = subprocess.run(
        [SANDBOX, "query-worker", "--agreement", AGGREGATE, "--port", port],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "rule tls-worker" in done.stderr


def test_the_workspace_reaches_an_https_worker_on_its_gateway_port() -> None:
    assert _on_gateway("https://127.0.0.1:8090/qs", "10.213.0.1") == "https://10.213.0.1:8090/qs"
    assert _on_gateway("https://worker/qs", "10.213.0.1") == "https://10.213.0.1:443/qs"
