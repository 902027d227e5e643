"""On a real single-node swarm: a workspace service reaches its agreement's worker and the
hub API port on its door, and nothing else: not another agreement's worker or overlay, not
another host port, not the host's loopback; the services are hardened as the containers of
the single-host backend are; and ending an agreement removes its services everywhere
before it returns, then its networks and rules."""

from __future__ import annotations

import json

import pytest
from docker.errors import NotFound

from sandbox.provisioning.runtime import WorkspaceStop
from sandbox.provisioning.swarm import stop
from sandbox.workspaces import firewall, swarm_network, swarm_services
from sandbox.workspaces.names import LABEL_AGREEMENT, home_volume_name
from tests.swarm.conftest import (
    end,
    running_task,
    start_worker_stand_in,
    start_workspace_service,
)
from tests.workspaces.conftest import Listener, new_agreement_id, probe, run_python

# Swarm services, networks and the host's firewall chains are one per machine.
pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("host-firewall")]

SLEEP = ["sleep", "infinity"]


@pytest.fixture(scope="module")
def two_agreements(swarm_client, workspace_image):
    """Agreements A and B, each with its overlay, door, worker and alice's workspace; a
    listener on A's door for the hub API (allowed) and one beside it (forbidden)."""
    a, b = new_agreement_id(), new_agreement_id()
    hub_api, forbidden, loopback = Listener("0.0.0.0"), Listener("0.0.0.0"), Listener("127.0.0.1")
    try:
        nets = {}
        for agreement_id in (a, b):
            nets[agreement_id] = swarm_network.provision(swarm_client, agreement_id, [hub_api.port])
            start_worker_stand_in(swarm_client, workspace_image, nets[agreement_id])
        workspace = start_workspace_service(swarm_client, workspace_image, nets[a], "alice", SLEEP)
        yield nets[a], nets[b], workspace, hub_api, forbidden, loopback
    finally:
        for agreement_id in (a, b):
            end(swarm_client, agreement_id)
        for listener in (hub_api, forbidden, loopback):
            listener.close()


def test_services_are_hardened_and_on_their_agreement_only(swarm_client, two_agreements):
    nets, _, container, *_ = two_agreements
    info = swarm_client.api.inspect_container(container)
    host = info["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
    assert host["Memory"] == 2 * 1024**3 and host["NanoCpus"] == 10**9
    assert host["PidsLimit"] == 512
    assert not host["PortBindings"] and host["Dns"] == [nets.door.gateway]
    assert host["Init"] is True
    assert info["Config"]["User"] == "1000:1000"
    assert sorted(info["NetworkSettings"]["Networks"]) == sorted([nets.overlay, nets.door.name])
    tmp = next(m for m in info["Mounts"] if m["Destination"] == "/tmp")
    assert tmp["Type"] == "tmpfs"
    code, mounts = run_python(swarm_client, container, "print(open('/proc/mounts').read())")
    [tmp_line] = [line for line in mounts.splitlines() if line.split()[1:2] == ["/tmp"]]
    assert {"nosuid", "nodev", "noexec"} <= set(tmp_line.split()[3].split(","))
    code, found = run_python(
        swarm_client,
        container,
        "import os\nfor d, _, fs in os.walk('/usr'):\n for f in fs:\n"
        "  p = os.path.join(d, f)\n  if os.path.isfile(p) and os.stat(p).st_mode & 0o6000:"
        " print(p)",
    )
    assert code == 0 and found.strip() == ""  # nothing to gain privileges by
    overlay = swarm_client.api.inspect_network(nets.overlay)
    assert overlay["Internal"] is True and overlay["Options"]["encrypted"] == "true"
    assert overlay["Driver"] == "overlay"
    door = swarm_client.api.inspect_network(nets.door.name)
    assert door["Internal"] is True and door["Scope"] == "swarm"
    [service] = swarm_client.api.services(
        filters={"label": f"{LABEL_AGREEMENT}={nets.door.agreement_id}", "name": "sandbox-alice"}
    )
    assert not service["Endpoint"].get("Ports")
    code, routes = run_python(swarm_client, container, "print(open('/proc/net/route').read())")
    destinations = [line.split()[1] for line in routes.strip().splitlines()[1:]]
    assert code == 0 and destinations and "00000000" not in destinations


def _worker_addresses(client, nets: swarm_network.SwarmNetworks) -> list[str]:
    """Another agreement's worker: its service's virtual IP and its task's own address."""
    name = swarm_services.worker_service_name(nets.door.agreement_id)
    service = client.api.inspect_service(name)
    vips = [vip["Addr"].split("/")[0] for vip in service["Endpoint"].get("VirtualIPs", [])]
    task = running_task(client, name)
    own = [a.split("/")[0] for n in task["NetworksAttachments"] for a in n["Addresses"]]
    return vips + own


def test_a_workspace_reaches_its_worker_and_the_hub_api_only(swarm_client, two_agreements):
    nets_a, nets_b, container, hub_api, forbidden, loopback = two_agreements
    worker_a = swarm_services.worker_service_name(nets_a.door.agreement_id)
    port = swarm_services.WORKER_PORT
    code, body = run_python(
        swarm_client,
        container,
        f"import urllib.request; print(urllib.request.urlopen('http://{worker_a}:{port}/', "
        "timeout=30).status)",
    )
    assert (code, body.strip()) == (0, "200"), body
    others = [(address, port) for address in _worker_addresses(swarm_client, nets_b)]
    outcomes = probe(
        swarm_client,
        container,
        [
            (nets_a.door.gateway, hub_api.port),
            (nets_a.door.gateway, forbidden.port),
            ("127.0.0.1", loopback.port),
            *others,
        ],
    )
    assert outcomes.pop(f"{nets_a.door.gateway}:{hub_api.port}") == "connected"
    assert outcomes.pop(f"{nets_a.door.gateway}:{forbidden.port}") == "ConnectionRefusedError"
    assert outcomes.pop(f"127.0.0.1:{loopback.port}") == "ConnectionRefusedError"
    assert set(outcomes.values()) <= {"OSError", "TimeoutError", "ConnectionRefusedError"}
    assert outcomes  # the other agreement's worker, by its address on its own overlay
    assert forbidden.accepted == 0 and loopback.accepted == 0
    worker_b = swarm_services.worker_service_name(nets_b.door.agreement_id)
    code, out = run_python(
        swarm_client,
        container,
        "import socket, json\nout = {}\nfor name in %r:\n try:\n  socket.getaddrinfo(name, 80)\n"
        "  out[name] = 'resolved'\n except socket.gaierror:\n  out[name] = 'gaierror'\n"
        "print(json.dumps(out))" % [worker_b, "probe.invalid"],
    )
    assert json.loads(out) == {worker_b: "gaierror", "probe.invalid": "gaierror"}


def test_ending_an_agreement_removes_its_services_everywhere_then_its_networks(
    swarm_client, workspace_image
):
    agreement_id = new_agreement_id()
    nets = swarm_network.provision(swarm_client, agreement_id, [])
    start_worker_stand_in(swarm_client, workspace_image, nets)
    for researcher in ("carol", "dave"):
        start_workspace_service(swarm_client, workspace_image, nets, researcher, SLEEP)
    # The hub has just removed both workspaces' services (their servers stopped) and their
    # containers are still shutting down: the suspension, finding no service of theirs
    # left to remove, still returns only once the containers are gone.
    for researcher in ("carol", "dave"):
        swarm_client.api.remove_service(f"sandbox-{researcher}--{agreement_id.lower()}")
    suspended = stop(swarm_client, WorkspaceStop(agreement_id, "suspended"), ended=False)
    assert suspended.containers_removed == 0  # the hub removed them; the worker stays
    label = {"label": f"{LABEL_AGREEMENT}={agreement_id}"}
    workspaces = {"label": [f"{LABEL_AGREEMENT}={agreement_id}", "sandbox.role=workspace"]}
    assert swarm_client.containers.list(all=True, filters=workspaces) == []
    assert [
        s["Spec"]["Labels"]["sandbox.role"] for s in swarm_client.api.services(filters=label)
    ] == ["query-worker"]
    ended = stop(swarm_client, WorkspaceStop(agreement_id, "terminated"), ended=True)
    assert (
        ended.containers_removed == 1
        and home_volume_name("carol", agreement_id) in ended.homes_destroyed
    )
    # When the call returns: no service, task or container of the agreement, anywhere.
    assert swarm_client.api.services(filters=label) == []
    assert not [
        t
        for t in swarm_client.api.tasks()
        if t["Spec"]["ContainerSpec"].get("Labels", {}).get(LABEL_AGREEMENT) == agreement_id
    ]
    assert swarm_client.containers.list(all=True, filters=label) == []
    for name in (nets.overlay, nets.door.name, swarm_network.door_config_name(agreement_id)):
        with pytest.raises(NotFound):
            swarm_client.api.inspect_network(name)
    assert firewall.rules(nets.door.bridge) == []
