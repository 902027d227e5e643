"""A real JupyterHub spawns a hardened named workspace per (researcher, agreement),
only when the control plane authorizes it, and removes the container on stop."""

from __future__ import annotations

import asyncio

import pytest
from docker.errors import NotFound

from hub_config.auth import ControlPlaneAuthenticator
from hub_config.control_plane import HttpControlPlane
from sandbox.workspaces import network
from sandbox.workspaces.names import (
    LABEL_AGREEMENT,
    home_volume_name,
    project_volume_name,
    server_name,
)
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


def test_hub_spawns_hardened_named_server_only_when_authorized(
    docker_client, workspace_image, stub, tmp_path
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
            "SANDBOX_QUERY_SERVICE_URL": f"http://127.0.0.1:{query_port}/qs",
        },
    )
    try:
        assert hub.api.post("/users/alice").status_code == 201
        refused = hub.api.post(f"/users/alice/servers/{server_name(refused_id)}")
        assert refused.status_code >= 400 and "no active agreement" in refused.text
        assert not docker_client.containers.list(
            all=True, filters={"label": f"{LABEL_AGREEMENT}={refused_id}"}
        )

        name = server_name(agreement_id)
        started = hub.api.post(f"/users/alice/servers/{name}")
        assert started.status_code in (201, 202), hub.log_tail()
        hub.wait_server("alice", name, ready=True)
        [container] = docker_client.containers.list(
            filters={"label": f"{LABEL_AGREEMENT}={agreement_id}"}
        )
        info = container.attrs
        net = network.provision(docker_client, agreement_id, [])  # the same network, looked up
        host = info["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert host["MemorySwap"] == host["Memory"] > 0 and host["PidsLimit"] > 0
        assert host["NetworkMode"] == net.name and not host["PortBindings"]
        assert info["Config"]["User"] == "1000:1000"
        assert sorted(m["Name"] for m in info["Mounts"]) == [
            home_volume_name("alice", agreement_id),
            project_volume_name(agreement_id),  # the agreement's shared project folder
        ]
        env = dict(item.split("=", 1) for item in info["Config"]["Env"])
        assert env["SANDBOX_TOKEN"] == WORKSPACE_TOKEN
        assert env["SANDBOX_QUERY_URL"] == f"http://{net.gateway}:{query_port}/qs"
        assert env["JUPYTERHUB_API_URL"].startswith(f"http://{net.gateway}:")
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
        with pytest.raises(NotFound):
            container.reload()
        # The home volume outlives the server; it goes with the agreement (R16).
        assert docker_client.volumes.get(home_volume_name("alice", agreement_id))
    finally:
        hub.stop()
        network.teardown(docker_client, agreement_id)
        network.teardown(docker_client, refused_id)
