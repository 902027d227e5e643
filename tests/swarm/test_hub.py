"""A real JupyterHub with SANDBOX_HUB_BACKEND=swarm spawns the named workspace as a
hardened service on its agreement's overlay and door, only when the control plane
authorizes it and the agreement's worker runs, and removes the service on stop."""

from __future__ import annotations

import pytest
from docker.errors import NotFound

from sandbox.workspaces import swarm_network, swarm_services
from sandbox.workspaces.names import LABEL_AGREEMENT, server_name
from tests.swarm.conftest import end, running_task, start_worker_stand_in
from tests.workspaces.conftest import new_agreement_id
from tests.workspaces.control_plane_stub import HUB_TOKEN, WORKSPACE_TOKEN, ControlPlaneStub
from tests.workspaces.hub import CONTROL_PLANE_TOKEN, Hub

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("host-firewall")]


def test_hub_spawns_a_hardened_service_on_the_agreement_networks(
    swarm_client, workspace_image, tmp_path
):
    agreement_id = new_agreement_id()
    stub = ControlPlaneStub(grants={("alice", agreement_id)})
    hub = None
    try:
        hub = Hub(
            tmp_path,
            {
                "SANDBOX_HUB_BACKEND": "swarm",
                "SANDBOX_HUB_PLATFORM_URL": stub.url,
                "SANDBOX_HUB_PLATFORM_TOKEN": HUB_TOKEN,
                "SANDBOX_HUB_IMAGE": workspace_image,
                "SANDBOX_HUB_QUERY_SERVICE_WAIT": "5",
            },
        )
        name = server_name(agreement_id)
        assert hub.api.post("/users/alice").status_code == 201
        refused = hub.api.post(f"/users/alice/servers/{name}")  # no worker runs yet
        assert refused.status_code >= 400, hub.log_tail()
        hub.wait_server("alice", name, ready=False)
        assert "query worker" in hub.log_tail() and "is not running" in hub.log_tail()

        nets = swarm_network.provision(swarm_client, agreement_id, [])  # the same, looked up
        start_worker_stand_in(swarm_client, workspace_image, nets)
        started = hub.api.post(f"/users/alice/servers/{name}")
        assert started.status_code in (201, 202), hub.log_tail()
        hub.wait_server("alice", name, ready=True)
        [found] = swarm_client.api.services(
            filters={"label": [f"{LABEL_AGREEMENT}={agreement_id}", "sandbox.role=workspace"]}
        )
        service = found["Spec"]["Name"]
        task = running_task(swarm_client, service)
        spec = task["Spec"]["ContainerSpec"]
        assert spec["CapabilityDrop"] == ["ALL"] and spec["ReadOnly"] is True
        assert spec["User"] == "1000:1000" and spec["Labels"][LABEL_AGREEMENT] == agreement_id
        assert task["Spec"]["Resources"]["Limits"]["Pids"] > 0
        attached = {n["Network"]["Spec"]["Name"] for n in task["NetworksAttachments"]}
        assert attached == {nets.overlay, nets.door.name}
        env = dict(item.split("=", 1) for item in spec["Env"])
        worker = swarm_services.worker_service_name(agreement_id)
        assert env["SANDBOX_QUERY_URL"] == f"http://{worker}:{swarm_services.WORKER_PORT}/qs"
        assert env["SANDBOX_TOKEN"] == WORKSPACE_TOKEN
        assert env["JUPYTERHUB_API_URL"].startswith(f"http://{nets.door.gateway}:")
        assert not {HUB_TOKEN, CONTROL_PLANE_TOKEN} & set(env.values())

        stopped = hub.api.delete(f"/users/alice/servers/{name}")
        assert stopped.status_code in (202, 204)
        hub.wait_server("alice", name, ready=False)
        with pytest.raises(NotFound):
            swarm_client.api.inspect_service(service)
    finally:
        if hub is not None:
            hub.stop()
        stub.close()
        end(swarm_client, agreement_id)
