"""A hub started again finds the workspaces still running (issue 17 item 3): with
``SANDBOX_HUB_BACKEND=swarm`` and the hub's own database on PostgreSQL
(``SANDBOX_HUB_DB_URL``), a hub that stops leaves the workspace's service running, and the
next hub, on the same database and ports, reattaches to it: the same container, ready,
without a new spawn, and stops it when asked."""

from __future__ import annotations

import pytest
from docker.errors import NotFound

from sandbox.workspaces import swarm_network
from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_ROLE, server_name
from tests.databases import fresh_postgres_database
from tests.swarm.conftest import end, start_worker_stand_in, task_container
from tests.workspaces.conftest import new_agreement_id
from tests.workspaces.control_plane_stub import HUB_TOKEN, ControlPlaneStub
from tests.workspaces.hub import Hub, free_port

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("host-firewall")]


def test_a_restarted_hub_reattaches_to_the_running_workspace(
    swarm_client, workspace_image, tmp_path
):
    agreement_id = new_agreement_id()
    name = server_name(agreement_id)
    stub = ControlPlaneStub(grants={("alice", agreement_id)})
    port = free_port()
    workspace = {"label": [f"{LABEL_AGREEMENT}={agreement_id}", f"{LABEL_ROLE}=workspace"]}
    hub = None
    try:
        with fresh_postgres_database() as db_url:
            env = {
                "SANDBOX_HUB_PLATFORM_URL": stub.url,
                "SANDBOX_HUB_PLATFORM_TOKEN": HUB_TOKEN,
                "SANDBOX_HUB_IMAGE": workspace_image,
                "SANDBOX_HUB_BACKEND": "swarm",
                "SANDBOX_HUB_QUERY_SERVICE_WAIT": "30",
                "SANDBOX_HUB_DB_URL": db_url,
                "SANDBOX_HUB_API_PORT": str(free_port()),  # the workspace's way to the hub
                "SANDBOX_HUB_PROXY_API_URL": f"http://127.0.0.1:{free_port()}",
            }
            nets = swarm_network.provision(swarm_client, agreement_id, [])
            start_worker_stand_in(swarm_client, workspace_image, nets)
            hub = Hub(tmp_path, env, port=port)
            assert hub.api.post("/users/alice").status_code == 201
            assert hub.api.post(f"/users/alice/servers/{name}").status_code in (201, 202)
            hub.wait_server("alice", name, ready=True)
            [service] = [s["ID"] for s in swarm_client.api.services(filters=workspace)]
            container = task_container(swarm_client, service)
            hub.stop()
            hub = None

            assert task_container(swarm_client, service) == container  # left running
            hub = Hub(tmp_path, env, port=port)
            server = hub.api.get("/users/alice").json()["servers"][name]
            assert server["ready"] is True, hub.log_tail()
            assert task_container(swarm_client, service) == container  # not spawned anew
            assert swarm_client.api.inspect_container(container)["State"]["Running"]

            assert hub.api.delete(f"/users/alice/servers/{name}").status_code in (202, 204)
            hub.wait_server("alice", name, ready=False)
            with pytest.raises(NotFound):
                swarm_client.api.inspect_service(service)
            hub.stop()
            hub = None
    finally:
        if hub is not None:
            hub.stop()
        stub.close()
        end(swarm_client, agreement_id)
