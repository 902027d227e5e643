"""Swarm fixtures: services made from exactly the dicts the hub's SwarmSpawner and the
platform use, on a real single-node swarm (``docker swarm init``, .ci/setup.sh)."""

from __future__ import annotations

import time

import pytest
from docker.types import ContainerSpec, TaskTemplate

from sandbox.provisioning.swarm import this_node
from sandbox.workspaces import hardening, network, swarm_network, swarm_services
from tests.resources import _missing
from tests.workspaces.conftest import docker_client, workspace_image  # noqa: F401


@pytest.fixture(scope="session")
def swarm_client(docker_client):  # noqa: F811
    """The docker client of a swarm manager (or a skip, or CI's failure, saying why)."""
    if not swarm_network.swarm_active(docker_client):
        _missing("DOCKER", "this engine is not a swarm manager (docker swarm init)")
    return docker_client


def running_task(client, service: str, limit: float = 120) -> dict:
    """The service's running task, once it runs."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for task in client.api.tasks(filters={"service": service}):
            if task["Status"]["State"] == "running":
                return task
            if task["Status"]["State"] in {"failed", "rejected", "shutdown"}:
                raise RuntimeError(f"{service}: {task['Status']}")
        time.sleep(0.2)
    raise TimeoutError(f"service {service} never ran")


def task_container(client, service: str) -> str:
    return running_task(client, service)["Status"]["ContainerStatus"]["ContainerID"]


def start_workspace_service(
    client,
    image: str,
    nets: swarm_network.SwarmNetworks,
    researcher: str,
    command: list[str],
    ca_file: str | None = None,
) -> str:
    """A workspace service as the hub's pre_spawn hook specifies it (same dicts, same
    route removal), with ``ca_file`` mounted as the hub mounts the platform's CA; returns
    its container's id."""
    agreement_id = nets.door.agreement_id
    limits = hardening.WorkspaceLimits()
    container = ContainerSpec(
        image,
        command,
        env=hardening.SERVER_ENVIRONMENT,
        **swarm_services.workspace_container(
            agreement_id=agreement_id,
            researcher=researcher,
            door=nets.door,
            home_volume=network.ensure_home_volume(client, researcher, agreement_id),
            project_volume=network.ensure_project_volume(client, agreement_id),
            limits=limits,
            ca_file=ca_file,
        ),
    )
    name = f"sandbox-{researcher}--{agreement_id.lower()}"
    client.api.create_service(
        TaskTemplate(
            container,
            **swarm_services.workspace_task(
                overlay=nets.overlay, door=nets.door, limits=limits, node=this_node(client)
            ),
        ),
        name=name,
        labels=swarm_services.workspace_labels(agreement_id, researcher),
    )
    container_id = task_container(client, name)
    network.drop_default_route(client.api.inspect_container(container_id)["State"]["Pid"])
    return container_id


def start_worker_stand_in(client, image: str, nets: swarm_network.SwarmNetworks) -> str:
    """The worker's service as the platform specifies it, running an HTTP server instead
    of ``sandbox query-worker`` (the networks are under test here; test_worker.py runs the
    real worker)."""
    agreement_id = nets.door.agreement_id
    plan = swarm_services.WorkerPlan(
        image=image,
        cli=[],
        user=hardening.WORKSPACE_USER,
        constraints=[f"node.id=={this_node(client)}"],
        environment={},
    )
    spec = swarm_services.worker_service(agreement_id, nets.overlay, plan)
    port = str(swarm_services.WORKER_PORT)
    spec["task_template"]["ContainerSpec"]["Command"] = ["python", "-m", "http.server", port]
    spec["task_template"]["ContainerSpec"]["Dir"] = "/tmp"
    client.api.create_service(**spec)
    return task_container(client, spec["name"])


def end(client, agreement_id: str) -> None:
    """Remove every service, volume and network of the agreement."""
    swarm_services.end_agreement(client, agreement_id)
    network.destroy_home_volumes(client, agreement_id)
    swarm_network.teardown(client, agreement_id)
