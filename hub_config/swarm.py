"""Workspaces as Docker Swarm services (``SANDBOX_HUB_BACKEND=swarm``).

SwarmSpawner with the single-host workspace's settings in their service form
(:mod:`sandbox.workspaces.swarm_services`), on the agreement's encrypted internal overlay,
where its query worker is, and on its door, the confined bridge through which the hub
and its proxy reach the server and the server reaches the hub API
(:mod:`sandbox.workspaces.swarm_network`). The worker is the platform's to start, at
provisioning (sandbox/provisioning/swarm.py); a spawn waits for it to run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import partial

import docker
from dockerspawner import SwarmSpawner
from tornado import web

from hub_config import hooks
from hub_config.control_plane import ControlPlane
from hub_config.settings import HubSettings
from sandbox.provisioning.swarm import (
    BACKEND,
    SwarmRefused,
    refuse_without_swarm,
    this_node,
    worker_tls,
)
from sandbox.settings import get_settings
from sandbox.workspaces import hardening, network, swarm_network, swarm_services
from sandbox.workspaces.names import network_name

__all__ = ["BACKEND", "SandboxSwarmSpawner", "configure"]


class SandboxSwarmSpawner(SwarmSpawner):
    """SwarmSpawner reached on the door, and without the door's default route."""

    async def _container(self) -> dict:
        """The running task's container (on this node: its door's gateway is this host)."""
        task = await self.get_task()
        container = (task or {}).get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
        if not container:
            raise RuntimeError(f"service {self.service_name} has no container on this node")
        return await self.docker("inspect_container", container)

    async def start_object(self) -> None:
        await super().start_object()
        info = await self._container()  # Docker before 26 routes internal networks' traffic
        await asyncio.to_thread(network.drop_default_route, info["State"]["Pid"])

    async def get_ip_and_port(self) -> tuple[str, int]:
        info = await self._container()
        return info["NetworkSettings"]["Networks"][self.network_name]["IPAddress"], self.port


@dataclass(frozen=True)
class SwarmPolicy:
    """What every Swarm workspace gets, whoever starts it."""

    hub_api_port: int
    limits: hardening.WorkspaceLimits
    #: Seconds to wait for the agreement's worker service to run (0: do not wait).
    worker_wait: float = 0
    #: Whether workers serve TLS (:func:`sandbox.provisioning.swarm.worker_tls`).
    tls: bool = False
    #: The CA file (on the host) the worker's certificate is verified against, mounted
    #: read-only into the workspace.
    tls_ca: str | None = None


def worker_running(client: docker.DockerClient, agreement_id: str) -> bool:
    """Whether the agreement's worker service has a task running (the hub cannot open the
    overlay to ask the worker itself)."""
    name = swarm_services.worker_service_name(agreement_id)
    try:
        tasks = client.api.tasks(filters={"service": name, "desired-state": "running"})
    except docker.errors.APIError:
        return False
    return any(task["Status"]["State"] == "running" for task in tasks)


def _wait_for_worker(client: docker.DockerClient, agreement_id: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not worker_running(client, agreement_id):
        if time.monotonic() >= deadline:
            raise web.HTTPError(
                503,
                f"The query worker of agreement {agreement_id} is not running: the operator "
                "must provision the agreement (its worker service starts then). Try again shortly.",
            )
        time.sleep(0.3)


async def pre_spawn(spawner, *, control_plane: ControlPlane, policy: SwarmPolicy) -> None:
    """Refuse unless the control plane authorizes this researcher on this agreement now;
    then make the service the single-host container would be, on the agreement's overlay
    and door, with its token and its worker's address."""
    username = spawner.user.name
    grant = await hooks.authorize(spawner, control_plane)
    agreement_id = grant.agreement_id
    if grant.network_name != network_name(agreement_id):
        raise web.HTTPError(500, "The control plane answered for another agreement.")
    client = docker.from_env()
    nets = await asyncio.to_thread(
        swarm_network.provision, client, agreement_id, [policy.hub_api_port]
    )
    home = await asyncio.to_thread(network.ensure_home_volume, client, username, agreement_id)
    project = await asyncio.to_thread(network.ensure_project_volume, client, agreement_id)
    if policy.worker_wait:
        await asyncio.to_thread(_wait_for_worker, client, agreement_id, policy.worker_wait)
    node = await asyncio.to_thread(this_node, client)
    spawner.network_name = nets.door.name
    spawner.hub_connect_url = f"http://{nets.door.gateway}:{policy.hub_api_port}"
    spawner.extra_container_spec = swarm_services.workspace_container(
        agreement_id=agreement_id,
        researcher=username,
        door=nets.door,
        home_volume=home,
        project_volume=project,
        limits=policy.limits,
        ca_file=policy.tls_ca,
    )
    spawner.extra_task_spec = swarm_services.workspace_task(
        overlay=nets.overlay, door=nets.door, limits=policy.limits, node=node
    )
    spawner.extra_create_kwargs = {
        "labels": swarm_services.workspace_labels(agreement_id, username)
    }
    ca = hardening.CA_PATH if policy.tls_ca else None  # the mounted file, as inside sees it
    spawner.environment = {
        **spawner.environment,
        **hardening.SERVER_ENVIRONMENT,
        **hooks.workspace_environment(grant, worker_url(agreement_id, tls=policy.tls), ca),
    }


def worker_url(agreement_id: str, *, tls: bool) -> str:
    """The agreement's query service as its workspaces reach it: the worker's service name
    on their overlay, which its certificate names."""
    scheme = "https" if tls else "http"
    worker = swarm_services.worker_service_name(agreement_id)
    return f"{scheme}://{worker}:{swarm_services.WORKER_PORT}/qs"


def setuid_files(client: docker.DockerClient, image: str) -> list[str]:
    """The image's setuid and setgid files."""
    found = client.containers.run(
        image,
        ["find", "/", "-xdev", "-type", "f", "-perm", "/6000"],
        user="0",
        network_mode="none",
        remove=True,
        stderr=False,
    )
    return found.decode().split()


def refuse_setuid_image(client: docker.DockerClient, image: str) -> None:
    """A service cannot set no-new-privileges (API < 1.46), so an image with a setuid or
    setgid file would let a workspace gain privileges: refused before the hub starts."""
    if found := setuid_files(client, image):
        raise SwarmRefused(
            f"image {image} has setuid or setgid files ({', '.join(found[:5])}) and a Swarm "
            "service cannot set no-new-privileges: rebuild it with images/build.sh, which "
            "strips them",
            rule="swarm-setuid",
        )


def configure(c, hub: HubSettings, control_plane: ControlPlane) -> None:  # type: ignore[no-untyped-def]
    """The hub's settings for Swarm workspaces; the hub runs on a manager node."""
    settings = get_settings()
    client = docker.from_env()
    refuse_without_swarm(client)
    refuse_setuid_image(client, hub.image)
    c.JupyterHub.spawner_class = SandboxSwarmSpawner
    # A hub that stops (an upgrade, a move to another manager) leaves workspaces running;
    # the next one finds them again from its database (SANDBOX_HUB_DB_URL).
    c.JupyterHub.cleanup_servers = False
    c.SwarmSpawner.image = hub.image
    c.SwarmSpawner.allowed_images = [hub.image]
    c.SwarmSpawner.pull_policy = "skip"  # every node has the image, built offline
    c.SwarmSpawner.name_template = "sandbox-{username}--{servername}"
    c.SwarmSpawner.use_internal_ip = True  # no published port: reached on the door
    c.SwarmSpawner.cmd = ["python", "-m", "query_guard.workspace_start", "jupyterhub-singleuser"]
    c.SwarmSpawner.cpu_limit = None  # the task's resources say it all
    c.SwarmSpawner.mem_limit = None
    c.Spawner.pre_spawn_hook = partial(
        pre_spawn,
        control_plane=control_plane,
        policy=SwarmPolicy(
            hub_api_port=hub.api_port,
            limits=hub.container_limits(),
            worker_wait=hub.query_service_wait,
            tls=worker_tls(settings),
            tls_ca=str(settings.tls_ca.resolve()) if settings.tls_ca else None,  # bind source
        ),
    )
