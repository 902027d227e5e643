"""`make run`'s workspace half (sandbox/cli/hub.py): with Docker it starts the agreement's
query worker on its network gateway and a JupyterHub configured against the platform;
told to start none it says why; the development workspace is kept off while the platform
holds data not marked demo data."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.agreements.service import import_agreement
from sandbox.cli.hub import dev_unavailable_reason, maybe_start_workspaces
from sandbox.db.base import transaction
from sandbox.provisioning.service import provision
from sandbox.settings import Settings
from sandbox.workspaces import firewall, network
from sandbox.workspaces.names import network_name
from tests.control_plane.helpers import agreement, publish_all
from tests.waiting import eventually
from tests.workspaces.hub import free_port

# These tests start hubs and change the host's firewall chains, which are one per machine:
# they run on one test worker, one after another (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("host-firewall")


def test_told_to_start_none_it_says_why_and_the_pages_get_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SANDBOX_HUB_START", "none")
    served, runtime = maybe_start_workspaces(Settings(environment="test"))
    assert runtime is None
    assert served.workspaces_missing == "SANDBOX_HUB_START=none"
    assert "workspaces:  not started — SANDBOX_HUB_START=none." in capsys.readouterr().out


def test_the_development_workspace_is_kept_off_while_any_dataset_is_not_demo_data(
    settings: Settings,
    factory: sessionmaker[Session],
    users: dict[str, User],
    catalog_dir: Path,
) -> None:
    publish_all(factory, users, settings, catalog_dir)
    reason = dev_unavailable_reason(settings)
    assert reason is not None and "clinic_visits" in reason and "demo_data" in reason


@pytest.mark.docker
def test_with_docker_it_starts_the_worker_on_the_gateway_and_the_hub(
    docker_client,
    workspace_image: str,
    settings: Settings,
    factory: sessionmaker[Session],
    users: dict[str, User],
    catalog_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANDBOX_HUB_PROXY_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("SANDBOX_HUB_IMAGE", workspace_image)
    monkeypatch.setenv("SANDBOX_HUB_START", "docker")
    settings = Settings(
        environment="test",
        data_dir=settings.data_dir,
        database_url=settings.db_url,
        port=free_port(),
        hub_url=f"http://127.0.0.1:{free_port()}",
        hub_api_port=free_port(),
        query_service_url=f"http://127.0.0.1:{free_port()}/qs",
    )
    signed = agreement(id=f"AGR-RUN-{free_port()}")
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        import_agreement(session=session, actor=users["health"], agreement=signed)
        provision(session=session, settings=settings, actor=users["ops"], agreement_id=signed.id)

    _, runtime = maybe_start_workspaces(settings)
    assert runtime is not None
    try:
        assert runtime.settings.hub_service_token and runtime.settings.hub_api_token
        [worker_url] = runtime.workers.values()
        ipam = docker_client.networks.get(network_name(signed.id)).attrs["IPAM"]["Config"]
        port = urlsplit(settings.query_service_url).port
        assert worker_url == f"http://{ipam[0]['Gateway']}:{port}/qs"
        eventually(
            lambda: httpx.post(f"{worker_url}/query", json={"sql": "SELECT 1"}).status_code == 401,
            "the query worker on the gateway",
            limit=90,
        )
        eventually(
            lambda: httpx.get(f"{settings.hub_url}/hub/api/").status_code == 200,
            "the hub",
            limit=90,
        )
        # The hub API listens on every interface; the firewall keeps it to this machine
        # and the agreement bridges (tests/workspaces/test_isolation.py shows the effect).
        guarded = f"--dport {settings.hub_api_port} -j {firewall.HUB_API_CHAIN}"
        assert [r for r in firewall.rules_of("INPUT") if r.endswith(guarded)]
    finally:
        runtime.stop()
        network.teardown(docker_client, signed.id)
    assert all(process.poll() is not None for process in runtime.processes)
    assert not [r for r in firewall.rules_of("INPUT") if firewall.HUB_API_CHAIN in r]
