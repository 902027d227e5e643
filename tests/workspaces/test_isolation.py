"""A workspace on its agreement's network reaches the allowed host port and nothing else."""

from __future__ import annotations

import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from docker.errors import NotFound

from sandbox.workspaces import firewall, hardening, network
from sandbox.workspaces.names import (
    LABEL_AGREEMENT,
    bridge_name,
    home_volume_name,
    project_volume_name,
)
from tests.workspaces.conftest import (
    Listener,
    new_agreement_id,
    probe,
    run_python,
    serve_http,
    start_workspace,
)

# These tests start hubs and change the host's firewall chains, which are one per machine:
# they run on one test worker, one after another (make test uses --dist loadgroup).
pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("host-firewall")]

SLEEP = ["sleep", "infinity"]


@pytest.fixture
def workspace(docker_client, workspace_image, agreement):
    """A hardened workspace on a confined network, with an allowed HTTP server on the
    gateway and a forbidden listener beside it."""
    net = network.provision(docker_client, agreement, [])
    allowed = serve_http(net.gateway)
    forbidden = Listener(net.gateway)
    loopback = Listener("127.0.0.1")
    net = network.provision(docker_client, agreement, [allowed.server_port])
    container = start_workspace(docker_client, workspace_image, net, "alice", SLEEP)
    yield net, container, allowed, forbidden, loopback
    allowed.shutdown()
    forbidden.close()
    loopback.close()


def test_inspect_shows_every_hardening_setting(docker_client, workspace):
    net, container, *_ = workspace
    info = docker_client.api.inspect_container(container)
    host, config = info["HostConfig"], info["Config"]
    limits = hardening.WorkspaceLimits()
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert host["Privileged"] is False
    assert "/tmp" in host["Tmpfs"] and "noexec" in host["Tmpfs"]["/tmp"]
    assert host["Memory"] == 2 * 1024**3 and host["MemorySwap"] == host["Memory"]
    assert host["NanoCpus"] == int(limits.cpus * 1e9)
    assert host["PidsLimit"] == limits.pids
    assert host["AutoRemove"] is True
    assert not host["PortBindings"]
    assert host["NetworkMode"] == net.name
    assert host["Dns"] == [net.gateway] and "timeout:1" in host["DnsOptions"]
    assert config["User"] == "1000:1000"
    assert sorted((m["Type"], m["Name"], m["Destination"]) for m in info["Mounts"]) == [
        ("volume", home_volume_name("alice", net.agreement_id), "/home/jovyan"),
        ("volume", project_volume_name(net.agreement_id), "/home/jovyan/project"),
    ]
    assert docker_client.api.inspect_network(net.name)["Internal"] is True


def test_routing_table_has_no_default_route(docker_client, workspace):
    _, container, *_ = workspace
    code, routes = run_python(docker_client, container, "print(open('/proc/net/route').read())")
    assert code == 0
    destinations = [line.split()[1] for line in routes.strip().splitlines()[1:]]
    assert destinations and "00000000" not in destinations


def test_firewall_allows_only_the_listed_port_on_the_gateway(docker_client, workspace):
    net, _, allowed, *_ = workspace
    rules = firewall.rules(net.bridge)
    accepts = [rule for rule in rules if "-j ACCEPT" in rule and "--dport" in rule]
    assert accepts == [
        f"-A {net.bridge}-in -d {net.gateway}/32 -p tcp -m tcp --dport {allowed.server_port} "
        "-j ACCEPT"
    ]
    assert rules[-1].endswith("-j REJECT --reject-with icmp-port-unreachable")


def test_allowed_port_reachable_others_refused_at_once(docker_client, workspace):
    net, container, allowed, forbidden, loopback = workspace
    outcomes = probe(
        docker_client,
        container,
        [
            (net.gateway, allowed.server_port),
            (net.gateway, forbidden.port),
            ("127.0.0.1", loopback.port),
        ],
    )
    assert outcomes == {
        f"{net.gateway}:{allowed.server_port}": "connected",
        f"{net.gateway}:{forbidden.port}": "ConnectionRefusedError",
        f"127.0.0.1:{loopback.port}": "ConnectionRefusedError",
    }
    assert forbidden.accepted == 0 and loopback.accepted == 0
    code, body = run_python(
        docker_client,
        container,
        "import urllib.request; print(urllib.request.urlopen("
        f"'http://{net.gateway}:{allowed.server_port}/', timeout=30).read().decode())",
    )
    assert code == 0 and "query-service-stand-in" in body


def test_names_do_not_resolve_and_no_dns_leaves(docker_client, workspace):
    net, container, *_ = workspace
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind((net.gateway, 53))
    dns.setblocking(False)
    try:
        code, out = run_python(
            docker_client,
            container,
            "import socket\ntry:\n socket.getaddrinfo('probe.invalid', 80)\n"
            "except socket.gaierror as e:\n print('gaierror')",
        )
        assert code == 0 and "gaierror" in out
        with pytest.raises(BlockingIOError):
            dns.recv(512)
    finally:
        dns.close()


def test_two_agreements_cannot_reach_each_other(docker_client, workspace_image, workspace):
    net_a, container_a, *_ = workspace
    other = new_agreement_id()
    try:
        net_b = network.provision(docker_client, other, [])
        server = ["python", "-m", "http.server", "8000"]
        container_b = start_workspace(docker_client, workspace_image, net_b, "bob", server)
        ip_b = docker_client.api.inspect_container(container_b)["NetworkSettings"]["Networks"][
            net_b.name
        ]["IPAddress"]
        outcome = probe(docker_client, container_a, [(ip_b, 8000), (net_b.gateway, 8000)])
        assert set(outcome.values()) <= {"OSError", "ConnectionRefusedError"}, outcome
        code, out = run_python(
            docker_client,
            container_a,
            f"import socket\ntry:\n socket.create_connection(('{ip_b}', 8000), 30)\n"
            "except OSError as e:\n print(e.errno)",
        )
        assert out.strip() in {"101", "113"}  # ENETUNREACH / EHOSTUNREACH, never a hang
    finally:
        network.teardown(docker_client, other)


def test_two_workspaces_of_one_agreement_cannot_reach_each_other(
    docker_client, workspace_image, workspace
):
    """Two researchers on the same agreement: neither opens the other's server."""
    net, container_a, *_ = workspace
    server = ["python", "-m", "http.server", "8000"]
    container_b = start_workspace(docker_client, workspace_image, net, "bob", server)
    ip_b = docker_client.api.inspect_container(container_b)["NetworkSettings"]["Networks"][
        net.name
    ]["IPAddress"]
    code, out = run_python(  # bob's server is up: it answers inside its own container
        docker_client,
        container_b,
        "import socket, time\nfor _ in range(100):\n try:\n  socket.create_connection("
        "('127.0.0.1', 8000), 5).close(); print('up'); break\n except OSError:\n"
        "  time.sleep(0.1)",
    )
    assert code == 0 and out.strip() == "up"
    assert probe(docker_client, container_a, [(ip_b, 8000)]) == {
        f"{ip_b}:8000": "ConnectionRefusedError"  # rejected at once, never a hang
    }
    options = docker_client.networks.get(net.name).attrs["Options"]
    assert options["com.docker.network.bridge.enable_icc"] == "false"


def test_the_hub_api_port_answers_only_this_machine_and_agreement_networks(
    docker_client, workspace_image, workspace
):
    """The hub API listens on every interface; another interface of this machine (Docker's
    default bridge) stands for the outside network, which must be refused."""
    net, container, *_ = workspace
    hub_api = Listener("0.0.0.0")
    outsider = docker_client.containers.run(
        workspace_image, SLEEP, detach=True, network="bridge", user="1000:1000"
    )
    try:
        network.provision(docker_client, net.agreement_id, [hub_api.port])
        firewall.guard_hub_api(hub_api.port)
        firewall.guard_hub_api(hub_api.port)  # idempotent: one jump, one chain
        jumps = [r for r in firewall.rules_of("INPUT") if firewall.HUB_API_CHAIN in r]
        assert jumps == [f"-A INPUT -p tcp -m tcp --dport {hub_api.port} -j sbx-hub-api"]
        outsider.reload()
        default_gateway = outsider.attrs["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
        inside = probe(docker_client, container, [(net.gateway, hub_api.port)])
        outside = probe(docker_client, outsider.id, [(default_gateway, hub_api.port)])
        assert inside == {f"{net.gateway}:{hub_api.port}": "connected"}
        assert outside == {f"{default_gateway}:{hub_api.port}": "ConnectionRefusedError"}
        socket.create_connection(("127.0.0.1", hub_api.port), timeout=30).close()  # the proxy
    finally:
        firewall.release_hub_api()
        outsider.remove(force=True)
        hub_api.close()
    assert not [r for r in firewall.rules_of("INPUT") if firewall.HUB_API_CHAIN in r]


def test_no_package_installer(docker_client, workspace):
    _, container, *_ = workspace
    for module in ("pip", "ensurepip"):
        result = docker_client.api.exec_create(container, ["python", "-m", module, "--version"])
        out = docker_client.api.exec_start(result["Id"]).decode()
        assert docker_client.api.exec_inspect(result["Id"])["ExitCode"] != 0
        assert f"No module named {module}" in out


def test_root_read_only_home_writable(docker_client, workspace):
    _, container, *_ = workspace
    code, out = run_python(
        docker_client,
        container,
        "import pathlib\npathlib.Path('/home/jovyan/notes.txt').write_text('ok')\n"
        "try:\n open('/usr/evil', 'w')\nexcept OSError as e:\n print('readonly', e.errno)",
    )
    assert code == 0 and "readonly 30" in out  # EROFS


def test_teardown_removes_containers_network_rules_and_homes(docker_client, workspace_image):
    agreement_id = new_agreement_id()
    net = network.provision(docker_client, agreement_id, [])
    container = start_workspace(docker_client, workspace_image, net, "carol", SLEEP)
    network.teardown(docker_client, agreement_id)
    with pytest.raises(NotFound):
        docker_client.api.inspect_container(container)
    with pytest.raises(NotFound):
        docker_client.networks.get(net.name)
    with pytest.raises(NotFound):
        docker_client.volumes.get(home_volume_name("carol", agreement_id))
    assert firewall.rules(net.bridge) == []
    network.teardown(docker_client, agreement_id)  # idempotent


def test_two_teardowns_at_once_both_end_the_agreement(docker_client, workspace_image):
    """A revocation and an expiry (or the hub's own stop) may end one agreement together:
    neither fails on a container the other is already removing."""
    agreement_id = new_agreement_id()
    net = network.provision(docker_client, agreement_id, [])
    for researcher in ("carol", "dave", "erin"):
        start_workspace(docker_client, workspace_image, net, researcher, SLEEP)
    with ThreadPoolExecutor(2) as pool:
        ends = [pool.submit(network.teardown, docker_client, agreement_id) for _ in range(2)]
        for end in ends:
            end.result()  # raises what a teardown raised
    left = docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_AGREEMENT}={agreement_id}"}
    )
    assert left == []
    assert firewall.rules(net.bridge) == []


HUB_SPAWNS = """
import sys
from sandbox.workspaces import firewall
for _ in range(int(sys.argv[2])):
    firewall.confine(sys.argv[1], "10.0.0.1", [8080])
"""


def test_the_hub_and_the_control_plane_edit_one_bridge_in_turn():
    """The hub (spawning) and the control plane (ending the agreement) are two processes
    editing one bridge's chains: neither fails on a jump or chain the other changed."""
    bridge = bridge_name(new_agreement_id())
    hub = subprocess.Popen(
        [sys.executable, "-c", HUB_SPAWNS, bridge, "40"], stderr=subprocess.PIPE, text=True
    )
    try:
        while hub.poll() is None:
            firewall.release(bridge)  # raised, before edits took turns across processes
    finally:
        _, said = hub.communicate(timeout=120)
    assert hub.returncode == 0, said
    firewall.release(bridge)
    assert firewall.rules(bridge) == []


WRITE = """
from pathlib import Path
Path('/home/jovyan/project/notes.txt').write_text('shared by alice')
Path('/home/jovyan/private.txt').write_text('alice only')
print('written')
"""
READ = """
from pathlib import Path
print(sorted(p.name for p in Path('/home/jovyan/project').iterdir()))
print(Path('/home/jovyan/private.txt').exists())
"""


def test_researchers_of_one_agreement_share_its_project_folder_until_it_ends(
    docker_client, workspace_image, agreement
):
    net = network.provision(docker_client, agreement, [])
    alice = start_workspace(docker_client, workspace_image, net, "alice", SLEEP)
    bob = start_workspace(docker_client, workspace_image, net, "bob", SLEEP)
    other_net = network.provision(docker_client, new_agreement_id(), [])
    try:
        other = start_workspace(docker_client, workspace_image, other_net, "alice", SLEEP)
        assert run_python(docker_client, alice, WRITE) == (0, "written\n")
        # bob sees the project's file, not alice's home; alice on another agreement sees neither.
        assert run_python(docker_client, bob, READ) == (0, "['notes.txt']\nFalse\n")
        assert run_python(docker_client, other, READ) == (0, "[]\nFalse\n")
    finally:
        network.teardown(docker_client, other_net.agreement_id)
    # The agreement ends: its workspaces, their homes and the project folder are destroyed.
    network.teardown(docker_client, agreement)
    for volume in (project_volume_name(agreement), home_volume_name("bob", agreement)):
        with pytest.raises(NotFound):
            docker_client.volumes.get(volume)
