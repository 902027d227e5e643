"""An agreement's two networks on Docker Swarm (``SANDBOX_HUB_BACKEND=swarm``).

* The agreement's **overlay** (``--internal``, ``--opt encrypted``): its workspaces and
  its query worker, nothing else; VXLAN between nodes is IPsec-encrypted, and an internal
  overlay has no gateway, so nothing on it reaches anything off it.
* The agreement's **door**: the single-host backend's confined bridge, made usable by
  services (a ``--scope swarm`` bridge built from a ``--config-only`` network on the node,
  which names the bridge and fixes its subnet). Its gateway is the host, where the firewall
  (:mod:`sandbox.workspaces.firewall`, unchanged) lets a workspace reach the hub API and
  nothing else; the hub and its proxy reach the workspace's server through it. The worker
  is not on it.

The door's subnet is picked from :data:`DOOR_POOL` under the firewall's lock: a
config-only network reserves nothing, so two agreements provisioned at once (the hub and
the control plane are two processes) must not pick the same one.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import time
from dataclasses import dataclass

import docker
from docker.errors import APIError, NotFound

from sandbox.workspaces import firewall
from sandbox.workspaces.names import (
    LABEL_AGREEMENT,
    LABEL_ROLE,
    bridge_name,
    network_name,
)
from sandbox.workspaces.network import AgreementNetwork

#: Where the doors' /24 subnets come from (one per agreement per node): apart from
#: Docker's local pools and the swarm's overlay pool, which .ci/setup.sh configures.
DOOR_POOL = ipaddress.ip_network("10.192.0.0/12")


@dataclass(frozen=True)
class SwarmNetworks:
    """An agreement's overlay (workspaces and worker) and its door (workspaces and host)."""

    overlay: str
    door: AgreementNetwork


def overlay_name(agreement_id: str) -> str:
    return f"{network_name(agreement_id)}-ov"


def door_config_name(agreement_id: str) -> str:
    return f"{network_name(agreement_id)}-cfg"


def swarm_active(client: docker.DockerClient) -> bool:
    """Whether this engine is a manager of an active swarm (it can create services)."""
    swarm = client.info().get("Swarm", {})
    return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))


def _labels(agreement_id: str, role: str) -> dict[str, str]:
    return {LABEL_AGREEMENT: agreement_id, LABEL_ROLE: role}


def _ensure_overlay(client: docker.DockerClient, agreement_id: str) -> str:
    name = overlay_name(agreement_id)
    try:
        client.networks.get(name)
    except NotFound:
        client.networks.create(
            name,
            driver="overlay",
            internal=True,
            options={"encrypted": "true"},
            labels=_labels(agreement_id, "agreement-overlay"),
        )
    return name


def used_subnets(client: docker.DockerClient) -> set[ipaddress.IPv4Network]:
    """Every subnet a network of this engine holds (local and swarm scope alike)."""
    used = set()
    for net in client.api.networks():
        for config in (net.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, ValueError):
                used.add(ipaddress.ip_network(config["Subnet"]))
    return used


def _free_door_subnet(client: docker.DockerClient) -> ipaddress.IPv4Network:
    used = used_subnets(client)
    for subnet in DOOR_POOL.subnets(new_prefix=24):
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise RuntimeError(f"no free /24 left in the doors' pool {DOOR_POOL}")


def _create_network(client: docker.DockerClient, **body: object) -> None:
    """``POST /networks/create`` as the Engine API has it: the SDK's ``create_network``
    knows neither ``ConfigOnly`` nor ``ConfigFrom``."""
    api = client.api
    api._result(api._post_json(api._url("/networks/create"), data=body), True)


def _ensure_door(client: docker.DockerClient, agreement_id: str) -> AgreementNetwork:
    """The config-only network (this node's bridge name, options and subnet) and the swarm
    network built from it, created once under the firewall's cross-process lock."""
    config, name = door_config_name(agreement_id), network_name(agreement_id)
    with open(firewall.LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            ipam = client.api.inspect_network(config)["IPAM"]["Config"][0]
        except NotFound:
            subnet = _free_door_subnet(client)
            ipam = {"Subnet": str(subnet), "Gateway": str(next(subnet.hosts()))}
            _create_network(
                client,
                Name=config,
                ConfigOnly=True,
                IPAM={"Config": [ipam]},
                Options={
                    "com.docker.network.bridge.name": bridge_name(agreement_id),
                    "com.docker.network.bridge.enable_ip_masquerade": "false",
                    "com.docker.network.bridge.enable_icc": "false",
                },
                Labels=_labels(agreement_id, "workspace-door-config"),
            )
        try:
            client.api.inspect_network(name)
        except NotFound:
            _create_network(
                client,
                Name=name,
                Driver="bridge",
                Scope="swarm",
                Internal=True,
                ConfigFrom={"Network": config},  # which takes no labels of its own
            )
    return AgreementNetwork(
        agreement_id=agreement_id,
        name=name,
        bridge=bridge_name(agreement_id),
        subnet=ipam["Subnet"],
        gateway=ipam["Gateway"],
    )


def provision(
    client: docker.DockerClient, agreement_id: str, allowed_ports: list[int]
) -> SwarmNetworks:
    """Create (or find) the agreement's overlay and door, and (re)install the door's rules
    before any workspace is on it: ``allowed_ports`` on the host, the hub API's only (the
    worker is reached on the overlay)."""
    overlay = _ensure_overlay(client, agreement_id)
    door = _ensure_door(client, agreement_id)
    firewall.confine(door.bridge, door.gateway, allowed_ports)
    return SwarmNetworks(overlay=overlay, door=door)


def _remove_network(client: docker.DockerClient, name: str, limit: float = 60) -> None:
    """Remove a network; a swarm network stays in use until its services' tasks have left
    every node, so a 'has active endpoints' refusal is waited out."""
    deadline = time.monotonic() + limit
    while True:
        try:
            client.api.remove_network(name)
            return
        except NotFound:
            return
        except APIError as error:
            if time.monotonic() >= deadline or "active endpoints" not in str(error):
                raise
            time.sleep(0.3)


def teardown(client: docker.DockerClient, agreement_id: str) -> None:
    """Remove the agreement's overlay, door, its config and the door's rules (its services
    must be gone first: :func:`sandbox.workspaces.swarm_services.remove_agreement_services`)."""
    for name in (overlay_name(agreement_id), network_name(agreement_id)):
        _remove_network(client, name)
    _remove_network(client, door_config_name(agreement_id))
    firewall.release(bridge_name(agreement_id))
