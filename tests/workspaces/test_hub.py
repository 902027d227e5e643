"""A real JupyterHub spawns a hardened named workspace per (researcher, agreement),
only when the control plane authorizes it, and removes the container on stop: with
DockerSpawner on one host, and with SANDBOX_HUB_BACKEND=swarm as a service on the
agreement's overlay and door of a real single-node swarm, once its worker runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from docker.errors import NotFound

from hub_config.auth import ControlPlaneAuthenticator
from hub_config.control_plane import HttpControlPlane
from hub_config.swarm import worker_url
from sandbox.workspaces import network, swarm_network
from sandbox.workspaces.names import (
    LABEL_AGREEMENT,
    home_volume_name,
    project_volume_name,
    server_name,
)
from tests.swarm.conftest import end, start_worker_stand_in, swarm_client  # noqa: F401
from tests.waiting import eventually
from tests.workspaces.conftest import new_agreement_id, run_python
from tests.workspaces.control_plane_stub import HUB_TOKEN, WORKSPACE_TOKEN, ControlPlaneStub
from tests.workspaces.hub import CONTROL_PLANE_TOKEN, Hub, free_port

# These tests start hubs and change the host's firewall chains, which are one per machine:
# they run on one test worker, one after another (make test uses --dist loadgroup).
pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("host-firewall")]


@pytest.fixture
def stub():
    stub = ControlPlaneStub(grants=set())
    yield stub
    stub.close()


def test_authenticator_asks_the_control_plane(stub):
    auth = ControlPlaneAuthenticator(control_plane=HttpControlPlane(stub.url, HUB_TOKEN))
    assert asyncio.run(auth.authenticate(None, {"username": "alice", "password": "password"}))
    assert asyncio.run(auth.authenticate(None, {"username": "alice", "password": "x"})) is None
    assert [path for path, _ in stub.calls] == ["/api/hub/authenticate"] * 2


@dataclass
class Backend:
    """What differs between the two backends for this test: the hub's settings, what
    must run before a spawn, and the networks and settings the workspace must have."""

    name: str
    client: object

    def settings(self, query_port: int) -> dict[str, str]:
        if self.name == "swarm":
            return {"SANDBOX_HUB_BACKEND": "swarm", "SANDBOX_HUB_QUERY_SERVICE_WAIT": "5"}
        return {"SANDBOX_QUERY_SERVICE_URL": f"http://127.0.0.1:{query_port}/qs"}

    def before_spawn(self, hub: Hub, agreement_id: str, image: str) -> None:
        """On Swarm, a spawn is refused until the agreement's worker service runs."""
        if self.name == "swarm":
            name = server_name(agreement_id)
            refused = hub.api.post(f"/users/alice/servers/{name}")
            assert refused.status_code >= 400, hub.log_tail()
            hub.wait_server("alice", name, ready=False)
            assert "query worker" in hub.log_tail() and "is not running" in hub.log_tail()
            nets = swarm_network.provision(self.client, agreement_id, [])
            start_worker_stand_in(self.client, image, nets)

    def check(self, info: dict, agreement_id: str, query_port: int) -> str:
        """The backend's own settings of the workspace; returns the gateway it has."""
        host, env = info["HostConfig"], dict(e.split("=", 1) for e in info["Config"]["Env"])
        attached = sorted(info["NetworkSettings"]["Networks"])
        if self.name == "swarm":
            nets = swarm_network.provision(self.client, agreement_id, [])  # looked up
            assert attached == sorted([nets.overlay, nets.door.name])
            assert env["SANDBOX_QUERY_URL"] == worker_url(agreement_id, tls=False)
            return nets.door.gateway
        net = network.provision(self.client, agreement_id, [])  # the same network, looked up
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert host["MemorySwap"] == host["Memory"] and host["NetworkMode"] == net.name
        assert env["SANDBOX_QUERY_URL"] == f"http://{net.gateway}:{query_port}/qs"
        return net.gateway

    def check_removed(self, container) -> None:  # type: ignore[no-untyped-def]
        """The stopped server's container is gone; on Swarm its service is, and the
        container follows once the node has shut it down."""
        if self.name == "swarm":
            with pytest.raises(NotFound):
                self.client.api.inspect_service(container.labels["com.docker.swarm.service.id"])
            eventually(lambda: not _exists(container), "the service's container to go", limit=60)
        with pytest.raises(NotFound):
            container.reload()

    def end(self, agreement_id: str) -> None:
        if self.name == "swarm":
            end(self.client, agreement_id)
        else:
            network.teardown(self.client, agreement_id)


def _exists(container) -> bool:  # type: ignore[no-untyped-def]
    try:
        container.reload()
    except NotFound:
        return False
    return True


@pytest.fixture(params=["docker", "swarm"])
def backend(request, docker_client) -> Backend:
    if request.param == "swarm":
        return Backend("swarm", request.getfixturevalue("swarm_client"))
    return Backend("docker", docker_client)


def test_hub_spawns_hardened_named_server_only_when_authorized(
    backend, docker_client, workspace_image, stub, tmp_path
):
    agreement_id, refused_id = new_agreement_id(), new_agreement_id()
    stub.grants.add(("alice", agreement_id))
    query_port = free_port()
    hub = Hub(
        tmp_path,
        {
            "SANDBOX_HUB_PLATFORM_URL": stub.url,
            "SANDBOX_HUB_PLATFORM_TOKEN": HUB_TOKEN,
            "SANDBOX_HUB_IMAGE": workspace_image,
            **backend.settings(query_port),
        },
    )
    try:
        assert hub.api.post("/users/alice").status_code == 201
        refused = hub.api.post(f"/users/alice/servers/{server_name(refused_id)}")
        assert refused.status_code >= 400 and "no active agreement" in refused.text
        assert not docker_client.containers.list(
            all=True, filters={"label": f"{LABEL_AGREEMENT}={refused_id}"}
        )

        backend.before_spawn(hub, agreement_id, workspace_image)
        name = server_name(agreement_id)
        started = hub.api.post(f"/users/alice/servers/{name}")
        assert started.status_code in (201, 202), hub.log_tail()
        hub.wait_server("alice", name, ready=True)
        [container] = docker_client.containers.list(
            filters={"label": [f"{LABEL_AGREEMENT}={agreement_id}", "sandbox.role=workspace"]}
        )
        info = container.attrs
        host = info["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
        assert host["Memory"] > 0 and host["PidsLimit"] > 0 and not host["PortBindings"]
        assert info["Config"]["User"] == "1000:1000"
        assert sorted(m["Name"] for m in info["Mounts"] if m["Type"] == "volume") == [
            home_volume_name("alice", agreement_id),
            project_volume_name(agreement_id),  # the agreement's shared project folder
        ]
        gateway = backend.check(info, agreement_id, query_port)
        env = dict(item.split("=", 1) for item in info["Config"]["Env"])
        assert env["SANDBOX_TOKEN"] == WORKSPACE_TOKEN
        assert env["JUPYTERHUB_API_URL"].startswith(f"http://{gateway}:")
        secrets = {HUB_TOKEN, CONTROL_PLANE_TOKEN}
        assert not secrets & set(env.values())
        code, routes = run_python(
            docker_client, container.id, "print(open('/proc/net/route').read())"
        )
        destinations = [line.split()[1] for line in routes.strip().splitlines()[1:]]
        assert code == 0 and destinations and "00000000" not in destinations

        # The control plane may start and stop servers but not open them.
        opened = hub.api.get(f"{hub.url}/user/alice/{name}/api/contents", follow_redirects=False)
        assert opened.status_code in (302, 403)

        stopped = hub.api.delete(f"/users/alice/servers/{name}")
        assert stopped.status_code in (202, 204)
        hub.wait_server("alice", name, ready=False)
        backend.check_removed(container)
        # The home volume outlives the server; it goes with the agreement (R16).
        assert docker_client.volumes.get(home_volume_name("alice", agreement_id))
    finally:
        hub.stop()
        backend.end(agreement_id)
        network.teardown(docker_client, refused_id)
