"""Host firewall rules that confine one agreement's bridge.

Docker's ``--internal`` only removes the default route: containers still reach
every port the host listens on through the bridge's gateway address, and
forwarded packets are silently dropped (connections hang). Each bridge gets two
chains of its own: ``<bridge>-in`` (from INPUT) accepts only the allowed host
ports on the gateway, ``<bridge>-fwd`` (from DOCKER-USER) rejects everything
forwarded to, from or across the bridge, so two workspaces of the same agreement
(two researchers) cannot open each other's servers either: each researcher's
work and queries stay their own (bridged traffic reaches iptables through
br_netfilter, which Docker enables; the network also disables inter-container
communication). Everything is REJECTed so that a blocked attempt fails at once.
One more chain, ``sbx-hub-api``, keeps the hub API port (listened on every
interface) to loopback and the agreement bridges.
"""

from __future__ import annotations

import fcntl
import functools
import subprocess
import threading
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from sandbox.workspaces.names import BRIDGE_PREFIX

P = ParamSpec("P")
R = TypeVar("R")
_EDITING = threading.Lock()
#: Held while editing, across processes: the hub (at a spawn) and the control plane (at a
#: provisioning or an agreement's end) edit the same bridge's rules. iptables' own lock
#: (``-w``) covers one command, not a read-then-change sequence.
LOCK_FILE = "/run/sandbox-firewall.lock"


def _one_edit_at_a_time(edit: Callable[P, R]) -> Callable[P, R]:
    """Each edit reads the rules and then changes them: two at once (a revocation and an
    expiry ending one agreement, or the hub spawning while the control plane provisions)
    would each delete what the other just read or re-add a jump the other is removing."""

    @functools.wraps(edit)
    def serialised(*args: P.args, **kwargs: P.kwargs) -> R:
        with _EDITING, open(LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            return edit(*args, **kwargs)

    return serialised


class FirewallEditFailed(RuntimeError):
    """An iptables command failed; the message keeps what the tool said."""


def _run(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([tool, "-w", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).strip()
        raise FirewallEditFailed(f"{tool} {' '.join(args)} failed ({done.returncode}): {said}")
    return done


def _has(tool: str, *rule: str) -> bool:
    return _run(tool, "-C", *rule, check=False).returncode == 0


def _ensure_jump(tool: str, chain: str, *match: str, target: str) -> None:
    if not _has(tool, chain, *match, "-j", target):
        _run(tool, "-I", chain, "1", *match, "-j", target)


def _fresh_chain(tool: str, chain: str) -> None:
    if _run(tool, "-N", chain, check=False).returncode != 0:
        _run(tool, "-F", chain)


@_one_edit_at_a_time
def confine(bridge: str, gateway: str, allowed_ports: Iterable[int]) -> None:
    """Let containers on ``bridge`` open TCP connections only to ``allowed_ports`` on
    the gateway address; reject the rest, each other included (IPv6 entirely).

    Idempotent: the bridge's chains are rebuilt, the jumps added once.
    """
    inbound, forward = f"{bridge}-in", f"{bridge}-fwd"
    _fresh_chain("iptables", inbound)
    _run(
        "iptables",
        "-A",
        inbound,
        "-m",
        "conntrack",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-j",
        "ACCEPT",
    )
    for port in sorted(set(allowed_ports)):
        _run(
            "iptables",
            "-A",
            inbound,
            "-d",
            gateway,
            "-p",
            "tcp",
            "--dport",
            str(port),
            "-j",
            "ACCEPT",
        )
    _append_rejects("iptables", inbound)
    _ensure_jump("iptables", "INPUT", "-i", bridge, target=inbound)

    _fresh_chain("iptables", forward)
    _append_rejects("iptables", forward)
    _ensure_jump("iptables", "DOCKER-USER", "-i", bridge, target=forward)
    _ensure_jump("iptables", "DOCKER-USER", "-o", bridge, target=forward)

    _fresh_chain("ip6tables", inbound)
    _append_rejects("ip6tables", inbound)
    _ensure_jump("ip6tables", "INPUT", "-i", bridge, target=inbound)
    _ensure_jump("ip6tables", "FORWARD", "-i", bridge, target=inbound)


#: The chain that keeps the hub API port to this machine and the agreement bridges.
HUB_API_CHAIN = "sbx-hub-api"


@_one_edit_at_a_time
def guard_hub_api(port: int) -> None:
    """Let only loopback and the agreement bridges reach the hub API ``port``.

    The hub API listens on every interface because each agreement's workspaces reach it
    on their own gateway; nothing off this machine has any business there. Idempotent.
    """
    for tool, bridges in (("iptables", True), ("ip6tables", False)):
        _fresh_chain(tool, HUB_API_CHAIN)
        _run(tool, "-A", HUB_API_CHAIN, "-i", "lo", "-j", "RETURN")
        if bridges:  # the per-bridge chains decide for the bridges (IPv6 is rejected there)
            _run(tool, "-A", HUB_API_CHAIN, "-i", f"{BRIDGE_PREFIX}+", "-j", "RETURN")
        _append_rejects(tool, HUB_API_CHAIN)
        _ensure_jump(tool, "INPUT", "-p", "tcp", "--dport", str(port), target=HUB_API_CHAIN)


@_one_edit_at_a_time
def release_hub_api() -> None:
    """Remove the hub API chain and every jump to it (whatever port it guarded)."""
    for tool in ("iptables", "ip6tables"):
        for rule in _run(tool, "-S", "INPUT", check=False).stdout.splitlines():
            if rule.endswith(f"-j {HUB_API_CHAIN}"):
                _run(tool, *rule.replace("-A", "-D", 1).split())
        if _run(tool, "-F", HUB_API_CHAIN, check=False).returncode == 0:
            _run(tool, "-X", HUB_API_CHAIN)


def _append_rejects(tool: str, chain: str) -> None:
    unreachable = "icmp-port-unreachable" if tool == "iptables" else "icmp6-port-unreachable"
    _run(tool, "-A", chain, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
    _run(tool, "-A", chain, "-j", "REJECT", "--reject-with", unreachable)


@_one_edit_at_a_time
def release(bridge: str) -> None:
    """Remove the bridge's jumps and chains; a no-op when they are already gone."""
    inbound, forward = f"{bridge}-in", f"{bridge}-fwd"
    jumps = [
        ("iptables", "INPUT", ("-i", bridge), inbound),
        ("iptables", "DOCKER-USER", ("-i", bridge), forward),
        ("iptables", "DOCKER-USER", ("-o", bridge), forward),
        ("ip6tables", "INPUT", ("-i", bridge), inbound),
        ("ip6tables", "FORWARD", ("-i", bridge), inbound),
    ]
    for tool, chain, match, target in jumps:
        while _has(tool, chain, *match, "-j", target):
            _run(tool, "-D", chain, *match, "-j", target)
    for tool, chain in [("iptables", inbound), ("iptables", forward), ("ip6tables", inbound)]:
        if _run(tool, "-F", chain, check=False).returncode == 0:
            _run(tool, "-X", chain)


def rules(bridge: str) -> list[str]:
    """The IPv4 rules of the bridge's chains in ``iptables -S`` form (for inspection)."""
    return rules_of(f"{bridge}-in") + rules_of(f"{bridge}-fwd")


def rules_of(chain: str) -> list[str]:
    """One IPv4 chain's rules in ``iptables -S`` form; none when the chain does not exist."""
    return _run("iptables", "-S", chain, check=False).stdout.splitlines()
