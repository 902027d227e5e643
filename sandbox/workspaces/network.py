"""One private ``--internal`` Docker network per agreement, confined by the firewall.

The hub ensures the network before every spawn, so a workspace never starts on a
network without its rules; teardown removes containers, network, rules and homes.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

import docker
from docker.errors import APIError, NotFound

from sandbox.workspaces import firewall
from sandbox.workspaces.names import (
    LABEL_AGREEMENT,
    LABEL_RESEARCHER,
    LABEL_ROLE,
    bridge_name,
    home_volume_name,
    network_name,
    project_volume_name,
)


@dataclass(frozen=True)
class AgreementNetwork:
    """Where an agreement's workspaces live, as the host sees it."""

    agreement_id: str
    name: str
    bridge: str
    subnet: str
    gateway: str


def _describe(agreement_id: str, network: docker.models.networks.Network) -> AgreementNetwork:
    ipam = network.attrs["IPAM"]["Config"][0]
    return AgreementNetwork(
        agreement_id=agreement_id,
        name=network.name,
        bridge=network.attrs["Options"]["com.docker.network.bridge.name"],
        subnet=ipam["Subnet"],
        gateway=ipam["Gateway"],
    )


def provision(
    client: docker.DockerClient, agreement_id: str, allowed_ports: Iterable[int]
) -> AgreementNetwork:
    """Create (or find) the agreement's internal network and (re)install its rules.

    ``allowed_ports`` are the host TCP ports the workspaces may reach on the
    gateway: the query service's and the hub API's, nothing else.
    """
    name = network_name(agreement_id)
    try:
        network = client.networks.get(name)
    except NotFound:
        network = client.networks.create(
            name,
            driver="bridge",
            internal=True,
            labels={LABEL_AGREEMENT: agreement_id, LABEL_ROLE: "workspace-network"},
            options={
                "com.docker.network.bridge.name": bridge_name(agreement_id),
                "com.docker.network.bridge.enable_ip_masquerade": "false",
                "com.docker.network.bridge.enable_icc": "false",
            },
        )
        network.reload()
    described = _describe(agreement_id, network)
    firewall.confine(described.bridge, described.gateway, allowed_ports)
    return described


def drop_default_route(pid: int) -> None:
    """Delete the default route in the network namespace of process ``pid``.

    Docker before 26 gives containers on ``--internal`` networks a default route via
    the gateway (the firewall still rejects what it carries); removing it makes
    "no route out" literal. A no-op when there is none.
    """
    netns = ["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-4", "route"]
    shown = subprocess.run([*netns, "show", "default"], capture_output=True, text=True, check=True)
    if shown.stdout.strip():
        subprocess.run([*netns, "del", "default"], capture_output=True, check=True)


def ensure_home_volume(client: docker.DockerClient, researcher: str, agreement_id: str) -> str:
    """Create the researcher's home volume for this agreement if missing; return its name."""
    name = home_volume_name(researcher, agreement_id)
    try:
        client.volumes.get(name)
    except NotFound:
        labels = {
            LABEL_AGREEMENT: agreement_id,
            LABEL_RESEARCHER: researcher,
            LABEL_ROLE: "workspace-home",
        }
        client.volumes.create(name, labels=labels)
    return name


def ensure_project_volume(client: docker.DockerClient, agreement_id: str) -> str:
    """Create the agreement's project volume, shared by its researchers, if missing; return
    its name. It carries the agreement's label, so it ends with the agreement's homes."""
    name = project_volume_name(agreement_id)
    try:
        client.volumes.get(name)
    except NotFound:
        labels = {LABEL_AGREEMENT: agreement_id, LABEL_ROLE: "workspace-project"}
        client.volumes.create(name, labels=labels)
    return name


def stop_workspaces(client: docker.DockerClient, agreement_id: str) -> int:
    """Remove every workspace container of the agreement (expiry, revocation, R11
    suspension); returns how many there were."""
    containers = client.containers.list(
        all=True, filters={"label": f"{LABEL_AGREEMENT}={agreement_id}"}
    )
    for container in containers:
        _remove(client, container.id)
    return len(containers)


def _remove(client: docker.DockerClient, container_id: str) -> None:
    """Remove a container, also when another caller (a second revocation, the hub's own
    stop) is already removing it: then wait until it is gone, as its volumes must be."""
    try:
        client.api.remove_container(container_id, force=True)
    except NotFound:
        return
    except APIError as error:
        if error.status_code != 409:
            raise
        with contextlib.suppress(NotFound):
            client.api.wait(container_id, condition="removed", timeout=60)


def destroy_home_volumes(client: docker.DockerClient, agreement_id: str) -> list[str]:
    """Delete every home volume of an ended agreement and its project volume (R16, Rizhao
    Art.31).

    Its containers must be gone first (see :func:`stop_workspaces`).
    """
    volumes = client.volumes.list(filters={"label": f"{LABEL_AGREEMENT}={agreement_id}"})
    for volume in volumes:
        with contextlib.suppress(NotFound):  # another teardown removed it first
            volume.remove()
    return [volume.name for volume in volumes]


def teardown(client: docker.DockerClient, agreement_id: str) -> None:
    """End an agreement's workspaces: containers, home volumes, network and its rules."""
    stop_workspaces(client, agreement_id)
    destroy_home_volumes(client, agreement_id)
    with contextlib.suppress(NotFound):
        client.networks.get(network_name(agreement_id)).remove()
    firewall.release(bridge_name(agreement_id))
