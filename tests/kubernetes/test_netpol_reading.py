"""The reading of NetworkPolicies the isolation tests rely on, against the cases the
Kubernetes documentation spells out (Concepts, Services and networking, Network Policies)."""

from __future__ import annotations

from tests.kubernetes.netpol import Endpoint, allowed

NAMESPACES = {"app": {"team": "app"}, "ops": {"team": "ops"}}
WEB = Endpoint("web", "10.0.0.1", "app", {"role": "web"})
DB = Endpoint("db", "10.0.0.2", "app", {"role": "db"})
CLIENT_HERE = Endpoint("client-here", "10.0.0.3", "app", {"role": "client"})
CLIENT_OPS = Endpoint("client-ops", "10.0.1.3", "ops", {"role": "client"})
OTHER_OPS = Endpoint("other-ops", "10.0.1.4", "ops", {"role": "other"})
OUTSIDE = Endpoint("outside", "192.0.2.7")


def _policy(spec: dict, namespace: str = "app") -> dict:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_a_pod_no_policy_selects_is_open_both_ways():
    policies = [_policy({"podSelector": {"matchLabels": {"role": "db"}}, "ingress": []})]
    assert allowed(policies, CLIENT_OPS, WEB, 80, "TCP", NAMESPACES)
    assert allowed(policies, WEB, OUTSIDE, 443, "TCP", NAMESPACES)
    # A policy with only ingress rules and no policyTypes isolates ingress alone.
    assert not allowed(policies, WEB, DB, 5432, "TCP", NAMESPACES)
    assert allowed(policies, DB, OUTSIDE, 443, "TCP", NAMESPACES)


def test_one_peer_with_both_selectors_is_and_two_peers_are_or():
    both = {"namespaceSelector": {"matchLabels": {"team": "ops"}}}
    both["podSelector"] = {"matchLabels": {"role": "client"}}
    either = [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]
    either.append({"podSelector": {"matchLabels": {"role": "client"}}})
    select_db = {"matchLabels": {"role": "db"}}
    anded = [_policy({"podSelector": select_db, "ingress": [{"from": [both]}]})]
    ored = [_policy({"podSelector": select_db, "ingress": [{"from": either}]})]
    reach = {
        name: {c.name for c in (CLIENT_HERE, CLIENT_OPS, OTHER_OPS)
               if allowed(p, c, DB, 5432, "TCP", NAMESPACES)}
        for name, p in (("and", anded), ("or", ored))
    }  # fmt: skip
    assert reach == {"and": {"client-ops"}, "or": {"client-here", "client-ops", "other-ops"}}


def test_an_empty_pod_selector_peer_means_every_pod_of_the_policys_namespace_only():
    rule = {"from": [{"podSelector": {}}]}
    policies = [_policy({"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [rule]})]
    assert allowed(policies, CLIENT_HERE, DB, 5432, "TCP", NAMESPACES)
    assert not allowed(policies, CLIENT_OPS, DB, 5432, "TCP", NAMESPACES)
    assert not allowed(policies, OUTSIDE, DB, 5432, "TCP", NAMESPACES)


def test_ports_protocols_and_ranges():
    ports = [{"protocol": "TCP", "port": 32000, "endPort": 32768}, {"protocol": "UDP", "port": 53}]
    spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": ports}]}
    policies = [_policy(spec)]
    assert allowed(policies, WEB, OUTSIDE, 32768, "TCP", NAMESPACES)
    assert not allowed(policies, WEB, OUTSIDE, 32769, "TCP", NAMESPACES)
    assert allowed(policies, WEB, OUTSIDE, 53, "UDP", NAMESPACES)
    assert not allowed(policies, WEB, OUTSIDE, 53, "TCP", NAMESPACES)


def test_ip_blocks_with_exceptions():
    block = {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.0/29"]}}
    spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [block]}]}
    policies = [_policy(spec)]
    assert not allowed(policies, WEB, OUTSIDE, 443, "TCP", NAMESPACES)  # .7 is excepted
    far = Endpoint("far", "192.0.2.200")
    assert allowed(policies, WEB, far, 443, "TCP", NAMESPACES)
