"""The whole stack for the end-to-end test, all real: the platform on uvicorn (SQLite in a
temporary directory), a JupyterHub with configurable-http-proxy and our DockerSpawner
config, and the agreement's query worker on its own port; or, with the ``swarm`` backend
(``SANDBOX_HUB_BACKEND=swarm``, on a real single-node swarm), the hub's SwarmSpawner and
the worker's service that the platform's provisioning starts (the real ``sandbox
query-worker``, run from this checkout in the workspace image) on the agreement's overlay.

Who listens where, and why:

* the platform API on 127.0.0.1 only: the hub calls it, workspaces never do;
* the hub's proxy on 127.0.0.1 (researchers, and the platform stopping servers), the hub
  API on every interface (workspaces reach it on their network's gateway);
* the agreement's query worker on the agreement network's gateway address and a port of
  its own: the only door to the data, and with the hub API the only host ports the
  firewall lets a workspace reach (on Swarm: the worker on the overlay, and the hub API
  the one port on the door's gateway).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from hub_config.swarm import worker_url
from sandbox.accounts.models import User
from sandbox.apps.platform import create_app
from sandbox.apps.worker import create_worker_app
from sandbox.contracts import dump_agreement
from sandbox.settings import Settings
from sandbox.workspaces import network, swarm_network
from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_ROLE, server_name
from tests.control_plane.conftest import PASSWORD, catalog_dir, factory, settings, users
from tests.control_plane.helpers import agreement, publish_all
from tests.e2e.servers import Served
from tests.second_factor import otp_field
from tests.swarm.conftest import end, swarm_client  # noqa: F401
from tests.web.conftest import browser_context, page  # the browser, for the whole path
from tests.workspaces.conftest import docker_client, workspace_image
from tests.workspaces.hub import Hub, free_port

HUB_TO_PLATFORM = "e2e-hub-to-platform-token"
PLATFORM_TO_HUB = "e2e-platform-to-hub-token"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the stack is under test here, not the database engines; in a folder of
    its own, which a worker service mounts."""
    return f"sqlite:///{tmp_path / 'db' / 'platform.db'}"


@pytest.fixture(params=["docker", "swarm"])
def backend(request: pytest.FixtureRequest, docker_client) -> str:
    """Where the workspaces run: DockerSpawner beside the hub, or services of a swarm."""
    if request.param == "swarm":
        request.getfixturevalue("swarm_client")  # a swarm manager, or the skip saying why
    return request.param


@dataclass
class Stack:
    """The running parts, and what the test needs to drive and inspect them."""

    agreement_id: str
    server_name: str
    settings: Settings
    platform: Served
    hub: Hub
    #: The network whose gateway is the host: the agreement's, or on Swarm its door.
    net: network.AgreementNetwork
    backend: str = "docker"
    #: The worker on the gateway (one host); on Swarm it is the agreement's service.
    worker: Served | None = None
    overlay: str | None = None

    @property
    def networks(self) -> list[str]:
        """Every network a workspace of the agreement is on."""
        return [self.net.name] + ([self.overlay] if self.overlay else [])

    @property
    def query_url(self) -> str:
        """Where a workspace reaches its query service."""
        if self.worker is not None:
            return f"{self.worker.url}/qs"
        return worker_url(self.agreement_id, tls=False)

    @property
    def gateway_ports(self) -> set[int]:
        """The only host ports the gateway's firewall lets a workspace reach."""
        worker = {int(self.worker.url.rsplit(":", 1)[1])} if self.worker else set()
        return worker | {self.settings.hub_api_port}

    @property
    def workspace_labels(self) -> list[str]:
        """The labels of the agreement's workspace containers (not its worker's)."""
        return [f"{LABEL_AGREEMENT}={self.agreement_id}", f"{LABEL_ROLE}=workspace"]

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
    backend: str,
    docker_client,
    workspace_image: str,
    settings: Settings,
    factory: sessionmaker[Session],
    users: dict[str, User],
    catalog_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    """Publish clinic_visits, import and provision an agreement for alice over the
    platform API, and start the hub and (on one host) the agreement's query worker."""
    agreement_id = f"AGR-E2E-{uuid.uuid4().hex[:8]}"
    platform_port, qs_port, hub_api_port = free_port(), free_port(), free_port()
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    on_swarm = {
        "SANDBOX_HUB_BACKEND": "swarm",
        "SANDBOX_HUB_QUERY_SERVICE_WAIT": "120",  # the worker's service starts with the hub
        "SANDBOX_HUB_SWARM_WORKER_FROM_HOST": "true",
        "SANDBOX_HUB_SWARM_WORKER_IMAGE": workspace_image,
    }
    if backend == "swarm":  # the platform here reads them as the hub does
        for name, value in on_swarm.items():
            monkeypatch.setenv(name, value)
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
                "hub_backend": backend,
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

        # Provisioning made the networks and their rules; look them up (idempotent).
        name = server_name(agreement_id)
        if backend == "swarm":  # and started the worker's service
            nets = swarm_network.provision(docker_client, agreement_id, [hub_api_port])
            yield Stack(
                agreement_id, name, settings, platform, hub, nets.door, backend,
                overlay=nets.overlay,
            )  # fmt: skip
            return
        net = network.provision(docker_client, agreement_id, [qs_port, hub_api_port])
        worker = Served(create_worker_app(settings, agreement_id), net.gateway, qs_port)
        served.append(worker)
        yield Stack(agreement_id, name, settings, platform, hub, net, worker=worker)
    finally:
        hub.api.delete(f"/users/alice/servers/{server_name(agreement_id)}")
        hub.stop()
        for server in served:
            server.stop()
        if backend == "swarm":
            end(docker_client, agreement_id)
        network.teardown(docker_client, agreement_id)
