"""Operators can see the platform run: ``GET /metrics`` on the platform and on a query
worker (its own process) answers Prometheus's text format, and the counters move after a
query, a DP release and a failed sign-in; the database gauges say how long the record is,
how much of it no checkpoint covers, the workspaces and each agreement's budget. Only the
configured token (or loopback, without one) may scrape. JupyterHub's metrics stay on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from traitlets.config import PyFileConfigLoader

from sandbox.accounts.backoff import ACCOUNT
from sandbox.accounts.models import User
from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.settings import Settings, get_settings
from tests.query_service.conftest import AGGREGATE, World, bearer
from tests.workspaces.hub import free_port

TOKEN = "prometheus-scrape-token"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
COUNTS = "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district"
BLOCKED = "SELECT patient_id, count(*) AS n FROM clinic_visits GROUP BY patient_id"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client: TestClient) -> Samples:
    r = client.get("/metrics", headers=SCRAPER)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE sandbox_queries_total counter" in r.text
    return parse(r.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def platform(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.settings.model_copy(update={"metrics_token": TOKEN}))) as c:
        yield c


def test_platform_counters_move_after_queries_a_release_and_failed_sign_ins(
    platform: TestClient, world: World
) -> None:
    before = scrape(platform)
    workspace = bearer(world.tokens[AGGREGATE])
    answered = platform.post(
        "/qs/query", json={"sql": COUNTS}, headers={**workspace, "accept": "application/json"}
    )
    assert answered.status_code == 200, answered.text
    assert platform.post("/qs/query", json={"sql": BLOCKED}, headers=workspace).status_code == 403
    dp = platform.post("/qs/dp", json={"sql": COUNTS, "epsilon": 0.25}, headers=workspace)
    assert dp.status_code == 200, dp.text
    for _ in range(ACCOUNT.free):
        wrong = {"username": "alice", "password": "not-her-password"}
        assert platform.post("/api/auth/token", data=wrong).status_code == 403
    assert platform.post("/api/auth/token", data=wrong).status_code == 429
    after = scrape(platform)

    assert moved(before, after, "sandbox_queries_total") == 2
    assert moved(before, after, "sandbox_queries_total", decision="block") == 1
    assert moved(before, after, "sandbox_query_duration_seconds_count") == 2
    assert moved(before, after, "sandbox_query_duration_seconds_bucket", le="+Inf") == 2
    charged = moved(before, after, "sandbox_dp_epsilon_charged_total", agreement=AGGREGATE)
    assert charged == pytest.approx(0.25)
    assert moved(before, after, "sandbox_sign_in_failures_total", channel="api") == ACCOUNT.free
    throttled = moved(before, after, "sandbox_sign_in_throttled_total", rule=ACCOUNT.rule)
    assert throttled == 1
    # Two queries, one release and five failed sign-ins: one event each.
    assert moved(before, after, "sandbox_audit_appends_total") == 2 + 1 + ACCOUNT.free

    with transaction(world.factory) as session:
        head = session.scalar(select(func.max(AuditEvent.seq)))
    assert value(after, "sandbox_audit_events") == head
    assert value(after, "sandbox_audit_unanchored_events") == head  # no checkpoint yet
    assert value(after, "sandbox_audit_outbox_events") == 0  # each step linked its events
    assert value(after, "sandbox_workspaces", status="provisioned") == 3
    assert value(after, "sandbox_dp_epsilon_spent", agreement=AGGREGATE) == pytest.approx(0.25)
    assert value(after, "sandbox_dp_epsilon_total", agreement=AGGREGATE) > 0.25


def test_only_the_scrape_token_or_loopback_may_scrape(
    settings: Settings, factory: sessionmaker[Session], users: dict[str, User]
) -> None:
    open_app = create_app(settings)
    with TestClient(open_app, client=("203.0.113.5", 40000)) as remote:
        refused = remote.get("/metrics")
        assert refused.status_code == 403 and refused.json()["rule"] == "metrics-token"
        assert "SANDBOX_METRICS_TOKEN" in refused.json()["error"]
    with TestClient(open_app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 200

    with TestClient(create_app(settings.model_copy(update={"metrics_token": TOKEN}))) as c:
        assert c.get("/metrics").json()["rule"] == "metrics-token"
        wrong = c.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 403 and wrong.json()["rule"] == "metrics-token"
        assert c.get("/metrics", headers=SCRAPER).status_code == 200
        assert "/metrics" not in c.get("/openapi.json").json()["paths"]


def _worker(world: World, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SANDBOX_DATABASE_URL": world.settings.db_url,
        "SANDBOX_DATA_DIR": str(world.settings.data_dir),
        "SANDBOX_ENVIRONMENT": "test",
    }
    env.pop("SANDBOX_METRICS_TOKEN", None)
    command = [str(Path(sys.executable).with_name("sandbox")), "query-worker"]
    command += ["--agreement", AGGREGATE, "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _scrape_url(url: str) -> Samples:
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return parse(r.text)


def test_a_query_worker_process_serves_its_own_metrics(world: World) -> None:
    port = free_port()
    worker = _worker(world, port)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                before = _scrape_url(f"{base}/metrics")  # loopback: no token needed
                break
            except httpx.TransportError:
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                time.sleep(0.1)
        else:
            raise AssertionError("the query worker never answered")
        workspace = bearer(world.tokens[AGGREGATE])
        r = httpx.post(f"{base}/qs/query", json={"sql": COUNTS}, headers=workspace, timeout=60)
        assert r.status_code == 200, r.text
        after = _scrape_url(f"{base}/metrics")
    finally:
        worker.terminate()
        worker.wait(30)
    assert moved(before, after, "sandbox_queries_total", mode="aggregate") == 1
    assert moved(before, after, "sandbox_query_duration_seconds_count") == 1
    assert moved(before, after, "sandbox_audit_appends_total") == 1
    assert value(after, "process_resident_memory_bytes") > 0


def test_jupyterhub_keeps_its_metrics_and_the_scrape_token_may_read_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("SANDBOX_HUB_STATE_DIR", str(tmp_path / "hub"))
    get_settings.cache_clear()
    try:
        config: Any = PyFileConfigLoader(
            "jupyterhub_config.py", path=_hub_config_dir()
        ).load_config()
    finally:
        get_settings.cache_clear()
    assert config.JupyterHub.get("authenticate_prometheus", True) is True
    services = {s["name"]: s for s in config.JupyterHub.services}
    roles = {r["name"]: r for r in config.JupyterHub.load_roles}
    assert services["prometheus"]["api_token"] == TOKEN
    assert roles["prometheus"]["scopes"] == ["read:metrics"]


def _hub_config_dir() -> str:
    import hub_config

    return str(Path(hub_config.__file__).parent)
