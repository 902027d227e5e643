"""Which connections a set of NetworkPolicies allows, by the API's documented rules.

A pod is isolated in a direction when some policy of its namespace selects it with that
policy type; then a connection passes only if a rule of such a policy matches the peer
and the port. A connection needs both ends: the source's egress and the destination's
ingress. Addresses outside the cluster have no policies. An ``ipBlock`` is read as
matching every address in its range, pods' too: the wider reading, so a test that finds
a path closed finds it closed under either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network


@dataclass(frozen=True)
class Endpoint:
    """A pod (with a namespace) or an address outside the cluster (namespace ``None``)."""

    name: str
    ip: str
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """Whether a label selector matches ``labels`` (``{}`` matches everything)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def _peer(peer: dict, endpoint: Endpoint, namespace: str, namespaces: dict[str, dict]) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ip_address(endpoint.ip)
        excepted = any(address in ip_network(cidr) for cidr in block.get("except", []))
        return address in ip_network(block["cidr"]) and not excepted
    if endpoint.namespace is None:
        return False
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], namespaces[endpoint.namespace])
    else:
        in_namespace = endpoint.namespace == namespace
    return in_namespace and selects(peer.get("podSelector", {}), endpoint.labels)


def _port(ports: list[dict] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        number = entry.get("port")
        assert number is None or isinstance(number, int), "named ports are not read here"
        last = entry.get("endPort", number)
        in_range = number is None or number <= port <= last
        if entry.get("protocol", "TCP") == protocol and in_range:
            return True
    return False


def _types(policy: dict) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _side(
    policies: list[dict],
    subject: Endpoint,
    peer: Endpoint,
    direction: str,
    port: int,
    protocol: str,
    namespaces: dict[str, dict],
) -> bool:
    if subject.namespace is None:
        return True
    applying = [
        policy
        for policy in policies
        if policy["metadata"]["namespace"] == subject.namespace
        and direction in _types(policy)
        and selects(policy["spec"]["podSelector"], subject.labels)
    ]
    if not applying:
        return True
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    return any(
        _port(rule.get("ports"), port, protocol)
        and (
            not rule.get(peers_key)
            or any(
                _peer(p, peer, policy["metadata"]["namespace"], namespaces) for p in rule[peers_key]
            )
        )
        for policy in applying
        for rule in policy["spec"].get(rules_key, [])
    )


def egress(
    policies: list[dict],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str,
    namespaces: dict[str, dict],
) -> bool:
    """Whether ``source``'s own policies let it open the connection."""
    return _side(policies, source, destination, "Egress", port, protocol, namespaces)


def ingress(
    policies: list[dict],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str,
    namespaces: dict[str, dict],
) -> bool:
    """Whether ``destination``'s own policies let the connection in."""
    return _side(policies, destination, source, "Ingress", port, protocol, namespaces)


def allowed(
    policies: list[dict],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str,
    namespaces: dict[str, dict],
) -> bool:
    """Whether ``source`` may open a connection to ``destination``'s ``port``: both ends."""
    return egress(policies, source, destination, port, protocol, namespaces) and ingress(
        policies, source, destination, port, protocol, namespaces
    )
