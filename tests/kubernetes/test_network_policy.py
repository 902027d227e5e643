"""What the NetworkPolicies allow, read by the API's rules over the real pods: KubeSpawner's
workspaces of two agreements (two researchers on the first), the generated workers, the
platform's Deployments. A workspace reaches its own agreement's worker and the hub, and
nothing else: not another agreement's worker, nor another researcher's workspace."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.workspaces.names import server_name
from tests.kubernetes.manifests import AGREEMENTS, everything, of_kind
from tests.kubernetes.netpol import Endpoint, allowed, egress, ingress
from tests.kubernetes.spawned import pod_manifest, spawner_for

NAMESPACES = {
    "sandbox": {"kubernetes.io/metadata.name": "sandbox"},
    "kube-system": {"kubernetes.io/metadata.name": "kube-system"},
}
#: Every port anything here listens on or might try: DNS, HTTPS, the API server,
#: PostgreSQL, the platform, the proxy's API, the hub, the workers, the workspaces, SSH.
PORTS = [(53, "UDP"), (53, "TCP"), (22, "TCP"), (80, "TCP"), (443, "TCP"), (5432, "TCP")]
PORTS += [(p, "TCP") for p in (6443, 8000, 8001, 8082, 8443, 8888)]
#: Each workspace by a short name: (researcher, agreement).
WORKSPACES = {
    "workspace-1": ("alice@example.org", AGREEMENTS[0]),
    "workspace-1b": ("carol", AGREEMENTS[0]),
    "workspace-2": ("bob", AGREEMENTS[1]),
}


@pytest.fixture
def endpoints(hub_config, stub) -> dict[str, Endpoint]:
    """Each pod by a short name, with the labels it really has, and an outside address."""

    async def workspace(researcher: str, agreement: str) -> dict:
        stub.grants.add((researcher, agreement))
        return await pod_manifest(await spawner_for(hub_config, researcher, server_name(agreement)))

    pods = {name: asyncio.run(workspace(*owner)) for name, owner in WORKSPACES.items()}
    for deployment in of_kind(everything(), "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        name = deployment["metadata"]["name"]
        if labels["sandbox.role"] == "query-worker":
            name = f"worker-{AGREEMENTS.index(labels['sandbox.agreement'].upper()) + 1}"
        pods[name] = deployment["spec"]["template"]
    found = {
        name: Endpoint(name, f"10.244.0.{i}", "sandbox", pod["metadata"]["labels"])
        for i, (name, pod) in enumerate(sorted(pods.items()), start=10)
    }
    found["database"] = Endpoint("database", "10.244.0.2", "sandbox", {"sandbox.role": "database"})
    found["kube-dns"] = Endpoint("kube-dns", "10.244.0.3", "kube-system", {"k8s-app": "kube-dns"})
    found["outside"] = Endpoint("outside", "203.0.113.9")  # a documentation address
    return found


def _reach(endpoints: dict[str, Endpoint], check=allowed) -> set[tuple[str, str, int]]:
    """(source, destination, port) for every connection ``check`` lets through."""
    policies = of_kind(everything(), "NetworkPolicy")
    return {
        (source, destination, port)
        for source, s in endpoints.items()
        for destination, d in endpoints.items()
        if source != destination
        for port, protocol in PORTS
        if check(policies, s, d, port, protocol, NAMESPACES)
    }


def _from(edges: set, source: str) -> set:
    return {edge for edge in edges if edge[0] == source}


def _into(edges: set, destination: str) -> set:
    return {edge for edge in edges if edge[1] == destination}


def _worker_of(workspace: str) -> str:
    return f"worker-{AGREEMENTS.index(WORKSPACES[workspace][1]) + 1}"


def test_a_workspace_reaches_its_own_worker_and_the_hub_only(endpoints):
    edges = _reach(endpoints)
    for workspace in WORKSPACES:
        assert _from(edges, workspace) == {
            (workspace, _worker_of(workspace), 8443),
            (workspace, "hub", 8082),
        }


def test_each_end_alone_keeps_agreements_apart(endpoints):
    """The workspace's egress and the worker's ingress each hold the line by themselves."""
    sent, received = _reach(endpoints, egress), _reach(endpoints, ingress)
    for workspace in WORKSPACES:
        own = _worker_of(workspace)
        assert {(d, p) for _, d, p in _from(sent, workspace)} == {(own, 8443), ("hub", 8082)}
        others = {f"worker-{n}" for n in range(1, len(AGREEMENTS) + 1)} - {own}
        assert not {(workspace, other, 8443) for other in others} & received


def test_a_worker_answers_its_own_workspaces_and_the_hub_only(endpoints):
    edges = _reach(endpoints)
    for n in range(1, len(AGREEMENTS) + 1):
        worker = f"worker-{n}"
        own = {(w, worker, 8443) for w in WORKSPACES if _worker_of(w) == worker}
        assert _into(edges, worker) == own | {("hub", worker, 8443)}


def test_a_workspace_is_opened_by_the_proxy_and_the_hub_only(endpoints):
    """Not by another researcher's workspace, even on the same agreement."""
    edges = _reach(endpoints)
    for workspace in WORKSPACES:
        assert _into(edges, workspace) == {
            ("proxy", workspace, 8888),
            ("hub", workspace, 8888),
        }


#: Every connection the policies allow that has a pod of the platform at one end. The
#: hub's and the platform's ``ipBlock`` rules (API server, identity provider, mail) are
#: read as reaching pods too, hence kube-dns on 443 and 6443.
EXPECTED = {
    ("hub", "kube-dns", 53),
    ("hub", "kube-dns", 443),
    ("hub", "kube-dns", 6443),
    ("hub", "outside", 443),
    ("hub", "outside", 6443),
    ("hub", "platform", 8000),
    ("hub", "proxy", 8001),
    ("hub", "worker-1", 8443),
    ("hub", "worker-2", 8443),
    ("hub", "workspace-1", 8888),
    ("hub", "workspace-1b", 8888),
    ("hub", "workspace-2", 8888),
    ("kube-dns", "platform", 8000),
    ("kube-dns", "proxy", 8000),
    ("outside", "platform", 8000),
    ("outside", "proxy", 8000),
    ("platform", "database", 5432),
    ("platform", "hub", 8082),
    ("platform", "kube-dns", 53),
    ("platform", "kube-dns", 443),
    ("platform", "outside", 443),
    ("proxy", "hub", 8082),
    ("proxy", "kube-dns", 53),
    ("proxy", "workspace-1", 8888),
    ("proxy", "workspace-1b", 8888),
    ("proxy", "workspace-2", 8888),
    ("worker-1", "database", 5432),
    ("worker-1", "kube-dns", 53),
    ("worker-2", "database", 5432),
    ("worker-2", "kube-dns", 53),
    ("workspace-1", "hub", 8082),
    ("workspace-1", "worker-1", 8443),
    ("workspace-1b", "hub", 8082),
    ("workspace-1b", "worker-1", 8443),
    ("workspace-2", "hub", 8082),
    ("workspace-2", "worker-2", 8443),
}


def test_the_platform_works_and_nothing_else_is_open(endpoints):
    """The paths the platform needs are open (researchers to the proxy, the proxy to the
    hub and workspaces, the hub to the API server, the platform and workers to PostgreSQL,
    ...), and no other."""
    ours = {name for name, e in endpoints.items() if e.namespace == "sandbox"}
    edges = {edge for edge in _reach(endpoints) if {edge[0], edge[1]} & ours}
    assert edges == EXPECTED
