"""End to end through the real hub (issue 5): alice signs in with her platform password,
spawns her agreement's workspace, runs a guarded query in a kernel and gets a DataFrame,
sees why a query is blocked, cannot reach anything but the query service and the hub; the
operator terminates the agreement and, when the call returns, the container is gone, the
token is refused and the home volume destroyed. A suspension stops the workspace too, but
keeps its home for the rectification, and no new workspace starts meanwhile.

No address outside this machine is ever contacted: isolation is shown by the workspace's
routing table, the firewall rules, and a listener the test opens on the host.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from docker import DockerClient
from docker.errors import NotFound
from docker.models.containers import Container

from sandbox.workspaces import firewall
from sandbox.workspaces.hardening import HOME_DIR, PROJECT_DIR, WORKSPACE_USER
from sandbox.workspaces.names import LABEL_AGREEMENT, home_volume_name, project_volume_name
from tests.control_plane.conftest import PASSWORD
from tests.e2e.conftest import Stack
from tests.e2e.jupyter import Kernel, api_token, log_in
from tests.workspaces.conftest import Listener

# These tests start hubs and change the host's firewall chains, which are one per machine:
# they run on one test worker, one after another (make test uses --dist loadgroup).
pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("host-firewall")]

QUERY = """
import json
from query_guard.client import connect
df = connect().sql("SELECT district, COUNT(*) AS n FROM clinic_visits GROUP BY district")
print(type(df).__name__, json.dumps({d: int(n) for d, n in zip(df["district"], df["n"])}))
"""

BLOCKED = """
import json
from query_guard.client import QueryBlocked, connect
try:
    connect().sql("SELECT patient_id FROM clinic_visits")
except QueryBlocked as blocked:
    print(json.dumps([[r.rule, r.message] for r in blocked.reasons]))
"""

ROUTES = "print(open('/proc/net/route').read())"

CONNECT = """
import socket
try:
    socket.create_connection(({host!r}, {port}), timeout=30).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


def hardening_problems(info: dict, stack: Stack) -> list[str]:
    """Every hardening setting `docker inspect` must show, as a list of what is missing; on
    Swarm those a service's container has (what a service cannot say is stood in for as
    sandbox/workspaces/swarm_services.py says, and tested in tests/swarm)."""
    host, config = info["HostConfig"], info["Config"]
    volumes = sorted((m["Name"], m["Destination"]) for m in info["Mounts"] if m["Type"] == "volume")
    tmpfs = [m["Destination"] for m in info["Mounts"] if m["Type"] == "tmpfs"]
    expected = {
        "CapDrop is ALL": host["CapDrop"] == ["ALL"] and not host["CapAdd"],
        "read-only root": host["ReadonlyRootfs"] is True,
        "not privileged": host["Privileged"] is False,
        "memory limit": host["Memory"] > 0,
        "cpu limit": host["NanoCpus"] > 0,
        "pids limit": (host["PidsLimit"] or 0) > 0,
        "no published ports": not host["PortBindings"] and not info["NetworkSettings"]["Ports"],
        "on the agreement's networks only": sorted(info["NetworkSettings"]["Networks"])
        == sorted(stack.networks),
        "non-root user": config["User"] == WORKSPACE_USER,
        "only the home and project volumes mounted": volumes
        == [
            (home_volume_name("alice", stack.agreement_id), HOME_DIR),
            (project_volume_name(stack.agreement_id), PROJECT_DIR),
        ]
        and len(info["Mounts"]) == 2 + len(tmpfs),
    }
    if stack.backend == "swarm":  # a service's tmpfs is always nosuid,nodev,noexec
        expected["tmpfs /tmp"] = tmpfs == ["/tmp"]
    else:
        expected |= {
            "no-new-privileges": "no-new-privileges:true" in (host["SecurityOpt"] or []),
            "tmpfs /tmp noexec": "noexec" in (host["Tmpfs"] or {}).get("/tmp", ""),
            "no swap": host["MemorySwap"] == host["Memory"],
            "removed on stop": host["AutoRemove"] is True,
            "network mode": host["NetworkMode"] == stack.net.name,
        }
    return [name for name, ok in expected.items() if not ok]


def district_counts(catalog_dir: Path) -> dict[str, int]:
    """The answer computed from the provider's file itself."""
    rows = pq.read_table(catalog_dir / "data" / "clinic_visits.parquet").to_pylist()
    return dict(Counter(row["district"] for row in rows if row["cost"] >= 0))


@dataclass
class RunningWorkspace:
    """alice's running workspace: her hub API client and token, and its container."""

    hub: httpx.Client
    token: str
    container: Container


def open_workspace(stack: Stack, docker_client: DockerClient) -> RunningWorkspace:
    """alice signs in through the hub's form (the platform checks her password) and
    starts her agreement's named server with her own API token."""
    session = log_in(stack.hub.url, "alice", PASSWORD)
    token = api_token(session, "alice")
    hub = httpx.Client(
        base_url=f"{stack.hub.url}/hub/api",
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    spawned = hub.post(f"/users/alice/servers/{stack.server_name}")
    assert spawned.status_code in (201, 202), stack.hub.log_tail()
    stack.hub.wait_server("alice", stack.server_name, ready=True)
    [container] = docker_client.containers.list(filters={"label": stack.workspace_labels})
    return RunningWorkspace(hub, token, container)


def change_status(stack: Stack, action: str, **body: object) -> dict:
    """The operator moves the agreement over the platform API; returns its answer."""
    answer = httpx.post(
        f"{stack.platform.url}/api/agreements/{stack.agreement_id}/{action}",
        json={"reason": f"End-to-end test: {action} by the operator.", **body},
        headers=stack.sign_in("ops"),
        timeout=180,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_researcher_queries_in_her_workspace_until_the_operator_revokes(
    stack: Stack, docker_client: DockerClient, catalog_dir: Path
) -> None:
    workspace = open_workspace(stack, docker_client)
    container = workspace.container
    home = home_volume_name("alice", stack.agreement_id)
    project = project_volume_name(stack.agreement_id)
    assert hardening_problems(container.attrs, stack) == []
    for name in stack.networks:
        assert docker_client.api.inspect_network(name)["Internal"] is True
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    workspace_token = env["SANDBOX_TOKEN"]
    assert env["SANDBOX_QUERY_URL"] == stack.query_url  # the worker: gateway, or overlay
    # The operator's list shows the running workspace's resource use (never its contents).
    listed = httpx.get(f"{stack.platform.url}/api/workspaces", headers=stack.sign_in("ops"))
    [usage] = [w for w in listed.json() if w["agreement_id"] == stack.agreement_id]
    [running] = usage["resources"]
    assert running["researcher"] == "alice" and running["status"] == "running"
    assert 0 < running["memory_mib"] <= running["memory_limit_mib"] and running["processes"] > 0
    page = httpx.get(f"{stack.platform.url}/operator", headers=stack.sign_in("ops"))
    assert "alice: running" in page.text  # the operator's page shows the same figures

    kernel = Kernel(f"{stack.hub.url}/user/alice/{stack.server_name}", workspace.token)
    forbidden = Listener(stack.net.gateway)
    try:
        # A guarded query in the kernel returns a DataFrame with the provider's numbers, perturbed.
        ran = kernel.run(QUERY)
        assert ran.error is None, ran
        kind, counts = ran.stdout.split(" ", 1)
        assert kind == "DataFrame"
        got, raw = json.loads(counts), district_counts(catalog_dir)
        assert set(got) == set(raw)  # aggregate mode: the same groups, perturbed counts
        assert all(abs(got[d] - n) <= 0.25 * n + 15 for d, n in raw.items()), (got, raw)

        # A blocked query shows its reasons, each naming its rule.
        blocked = kernel.run(BLOCKED)
        assert blocked.error is None, blocked
        reasons = json.loads(blocked.stdout)
        assert "QG-007" in [rule for rule, _ in reasons], reasons

        # No route out: the routing table has no default route ...
        routes = kernel.run(ROUTES).stdout.strip().splitlines()[1:]
        destinations = [line.split()[1] for line in routes]
        assert destinations and "00000000" not in destinations
        # ... the firewall lets through the hub API's port only, and on one host the query
        # worker's (on Swarm the worker is on the overlay, not behind the gateway) ...
        accepted = {
            int(rule.split("--dport ")[1].split()[0])
            for rule in firewall.rules(stack.net.bridge)
            if "-j ACCEPT" in rule and "--dport" in rule
        }
        assert accepted == stack.gateway_ports
        # ... and another host port on the same gateway is refused at once, never reached.
        refused = kernel.run(CONNECT.format(host=stack.net.gateway, port=forbidden.port))
        assert refused.stdout.strip() == "ConnectionRefusedError", refused
        assert forbidden.accepted == 0
    finally:
        kernel.close()
        forbidden.close()

    # The operator terminates the agreement; when the call returns, nothing of it runs.
    ended = change_status(stack, "terminate")
    assert ended["status"] == "terminated"
    [stop] = ended["workspace_stops"]
    assert stop["servers_stopped"] == [f"alice/{stack.server_name}"]
    assert stop["hub_error"] is None
    with pytest.raises(NotFound):
        container.reload()
    assert not docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_AGREEMENT}={stack.agreement_id}"}
    )  # on Swarm the worker's too
    assert stack.server_name not in workspace.hub.get("/users/alice").json()["servers"]
    # The worker's address went with the agreement's network; the platform's own query
    # service (same token table) refuses the token.
    refused_query = httpx.post(
        f"{stack.platform.url}/qs/query",
        json={"sql": "SELECT COUNT(*) FROM clinic_visits"},
        headers={"Authorization": f"Bearer {workspace_token}"},
    )
    assert refused_query.status_code == 401
    assert refused_query.json()["rule"] == "workspace-token"
    # The agreement has ended: the home and project volumes are destroyed (R16, Rizhao Art.31).
    for volume in (home, project):
        with pytest.raises(NotFound):
            docker_client.volumes.get(volume)


def test_suspension_stops_the_workspace_keeps_its_home_and_refuses_a_new_one(
    stack: Stack, docker_client: DockerClient
) -> None:
    workspace = open_workspace(stack, docker_client)

    suspended = change_status(stack, "suspend", rectification_days=10)
    assert suspended["status"] == "suspended"
    [stop] = suspended["workspace_stops"]
    assert stop["servers_stopped"] == [f"alice/{stack.server_name}"] and not stop["hub_error"]
    with pytest.raises(NotFound):
        workspace.container.reload()
    # Suspended, not ended: alice's files wait for the rectification (Shanghai Art.26, 36).
    assert docker_client.volumes.get(home_volume_name("alice", stack.agreement_id))
    assert docker_client.volumes.get(project_volume_name(stack.agreement_id))

    again = workspace.hub.post(f"/users/alice/servers/{stack.server_name}")
    assert again.status_code >= 400
    assert "agreement-not-active; Shanghai Art.26, 36" in again.text, again.text
    assert not docker_client.containers.list(all=True, filters={"label": stack.workspace_labels})
