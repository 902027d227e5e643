"""The whole stack for the end-to-end test, all real: the platform on uvicorn (SQLite in a
temporary directory), a JupyterHub with configurable-http-proxy and our DockerSpawner
config, and the agreement's query worker on its own port.

Who listens where, and why:

* the platform API on 127.0.0.1 only: the hub calls it, workspaces never do;
* the hub's proxy on 127.0.0.1 (researchers, and the platform stopping servers), the hub
  API on every interface (workspaces reach it on their network's gateway);
* the agreement's query worker on the agreement network's gateway address and a port of
  its own: the only door to the data, and with the hub API the only host ports the
  firewall lets a workspace reach.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.apps.platform import create_app
from sandbox.apps.worker import create_worker_app
from sandbox.contracts import dump_agreement
from sandbox.settings import Settings
from sandbox.workspaces import network
from sandbox.workspaces.names import server_name
from tests.control_plane.conftest import PASSWORD, catalog_dir, factory, settings, users
from tests.control_plane.helpers import agreement, publish_all
from tests.e2e.servers import Served
from tests.second_factor import otp_field
from tests.web.conftest import browser_context, page  # the browser, for the whole path
from tests.workspaces.conftest import docker_client, workspace_image
from tests.workspaces.hub import Hub, free_port

HUB_TO_PLATFORM = "e2e-hub-to-platform-token"
PLATFORM_TO_HUB = "e2e-platform-to-hub-token"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the stack is under test here, not the database engines."""
    return f"sqlite:///{tmp_path / 'platform.db'}"


@dataclass
class Stack:
    """The running parts, and what the test needs to drive and inspect them."""

    agreement_id: str
    server_name: str
    settings: Settings
    platform: Served
    worker: Served
    hub: Hub
    net: network.AgreementNetwork

    def sign_in(self, username: str) -> dict[str, str]:
        """Headers of ``username`` signed in to the platform API."""
        return sign_in(self.platform, username)


def sign_in(platform: Served, username: str) -> dict[str, str]:
    """Sign in to the platform API with the password the test accounts share (and the
    authenticator's code, for accounts with a second factor)."""
    data = {"username": username, "password": PASSWORD}
    answer = httpx.post(
        f"{platform.url}/api/auth/token",
        data={**data, **otp_field(platform.server.config.app, username)},
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture
def stack(
    docker_client,
    workspace_image: str,
    settings: Settings,
    factory: sessionmaker[Session],
    users: dict[str, User],
    catalog_dir: Path,
    tmp_path: Path,
) -> Iterator[Stack]:
    """Publish clinic_visits, import and provision an agreement for alice over the
    platform API, and start the hub and the agreement's query worker."""
    agreement_id = f"AGR-E2E-{uuid.uuid4().hex[:8]}"
    platform_port, qs_port, hub_api_port = free_port(), free_port(), free_port()
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    hub = Hub(
        hub_dir,
        {
            "SANDBOX_HUB_PLATFORM_URL": f"http://127.0.0.1:{platform_port}",
            "SANDBOX_HUB_PLATFORM_TOKEN": HUB_TO_PLATFORM,
            "SANDBOX_HUB_API_PORT": str(hub_api_port),
            "SANDBOX_HUB_IMAGE": workspace_image,
            "SANDBOX_QUERY_SERVICE_URL": f"http://127.0.0.1:{qs_port}/qs",
        },
        token=PLATFORM_TO_HUB,
    )
    served: list[Served] = []
    try:
        settings = settings.model_copy(
            update={
                "hub_url": hub.url,
                "hub_service_token": HUB_TO_PLATFORM,
                "hub_api_token": PLATFORM_TO_HUB,
                "hub_api_port": hub_api_port,
                "query_service_url": f"http://127.0.0.1:{qs_port}/qs",
            }
        )
        publish_all(factory, users, settings, catalog_dir)
        platform = Served(create_app(settings), "127.0.0.1", platform_port)
        served.append(platform)

        signed = dump_agreement(agreement(id=agreement_id))
        imported = httpx.post(
            f"{platform.url}/api/agreements",
            content=signed.encode(),
            headers={**sign_in(platform, "health"), "Content-Type": "application/yaml"},
        )
        assert imported.status_code == 201, imported.text
        provisioned = httpx.post(
            f"{platform.url}/api/workspaces/{agreement_id}/provision",
            headers=sign_in(platform, "ops"),
            timeout=60,
        )
        assert provisioned.status_code == 200, provisioned.text

        # Provisioning made the network and its rules; look it up (same ports: idempotent).
        net = network.provision(docker_client, agreement_id, [qs_port, hub_api_port])
        worker = Served(create_worker_app(settings, agreement_id), net.gateway, qs_port)
        served.append(worker)
        yield Stack(agreement_id, server_name(agreement_id), settings, platform, worker, hub, net)
    finally:
        hub.api.delete(f"/users/alice/servers/{server_name(agreement_id)}")
        hub.stop()
        for server in served:
            server.stop()
        network.teardown(docker_client, agreement_id)
