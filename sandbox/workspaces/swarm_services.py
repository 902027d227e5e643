"""An agreement's services on Docker Swarm: its researchers' workspaces (made by the hub's
SwarmSpawner from :func:`workspace_container` and :func:`workspace_task`) and its one query
worker (:func:`ensure_worker`), hardened as the single-host containers are.

What Swarm (Engine API 1.41, Docker 20.10) cannot say, and what stands in for it:

* ``no-new-privileges``: a service has no such setting before API 1.46. Workspaces run as
  uid 1000 with every capability dropped, and the image has no setuid or setgid file
  (images/Dockerfile strips them; the hub refuses to start with an image that has one,
  hub_config/swarm.py), so no exec can gain privileges.
* ``memswap_limit``: a service sets memory only; nodes run without swap (operator's guide).
* ``tmpfs`` flags: a service's tmpfs mount is always ``nosuid,nodev,noexec`` on Linux;
  the size is set.
* ``auto_remove``: a service's task leaves with its service; the hub removes the service
  when the server stops, and revocation removes every service of the agreement.

Published ports: none (no endpoint ports). Egress: none, the overlay is internal and the
door's firewall rejects what it forwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import docker
from docker.errors import NotFound
from docker.types import (
    ContainerSpec,
    DNSConfig,
    EndpointSpec,
    Healthcheck,
    Mount,
    Placement,
    RestartPolicy,
    TaskTemplate,
)
from docker.utils import parse_bytes

from sandbox.workspaces import hardening
from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_RESEARCHER, LABEL_ROLE, network_name
from sandbox.workspaces.network import AgreementNetwork

#: A workspace or worker stops within this many seconds, or is killed (revocation waits).
STOP_GRACE_NS = 5 * 10**9
#: The port the worker listens on, on its overlay (reached by the service's name).
WORKER_PORT = 8000
_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1"}
#: The label the engine puts on a task's container: its service's id.
_SERVICE_LABEL = "com.docker.swarm.service.id"


#: The worker's task runs (and its name resolves on the overlay) once its port answers:
#: until then a spawn waits, as one host's hub waits for the worker to answer (the hub
#: cannot reach the overlay to ask). Bash's /dev/tcp, in the worker's image, connects.
WORKER_HEALTH = Healthcheck(
    test=["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{WORKER_PORT}"],
    interval=5 * 10**9,
    timeout=3 * 10**9,
    retries=3,
    start_period=120 * 10**9,
)


def worker_service_name(agreement_id: str) -> str:
    """The agreement's query worker service, also its name on the overlay."""
    return f"{network_name(agreement_id)}-qw"


def _resources(memory: str, cpus: float, pids: int) -> dict:
    """A task's limits as the Engine API has them (the SDK's ``Resources`` has no pids)."""
    return {
        "Limits": {"MemoryBytes": parse_bytes(memory), "NanoCPUs": int(cpus * 1e9), "Pids": pids}
    }


def _tmp(size: str) -> Mount:
    return Mount("/tmp", None, type="tmpfs", tmpfs_size=parse_bytes(size))


def workspace_container(
    *,
    agreement_id: str,
    researcher: str,
    door: AgreementNetwork,
    home_volume: str,
    project_volume: str,
    limits: hardening.WorkspaceLimits,
    ca_file: str | None = None,
) -> dict:
    """``ContainerSpec`` keywords besides image, command and environment (SwarmSpawner's
    ``extra_container_spec``): the single-host container's settings, as a service has them.
    The resolver forwards to the door's gateway, where the firewall rejects port 53."""
    mounts = [
        Mount(hardening.HOME_DIR, home_volume),
        Mount(hardening.PROJECT_DIR, project_volume),
        _tmp(limits.tmp_size),
    ]
    if ca_file:
        mounts.append(Mount(hardening.CA_PATH, ca_file, type="bind", read_only=True))
    return {
        "user": hardening.WORKSPACE_USER,
        "workdir": hardening.HOME_DIR,
        "read_only": True,
        "cap_drop": ["ALL"],
        "init": True,
        "mounts": mounts,
        "dns_config": DNSConfig(nameservers=[door.gateway], options=["timeout:1", "attempts:1"]),
        "sysctls": dict(_SYSCTLS),
        "stop_grace_period": STOP_GRACE_NS,
        "labels": {
            LABEL_AGREEMENT: agreement_id,
            LABEL_RESEARCHER: researcher,
            LABEL_ROLE: "workspace",
        },
    }


def workspace_task(
    *, overlay: str, door: AgreementNetwork, limits: hardening.WorkspaceLimits, node: str
) -> dict:
    """``TaskTemplate`` keywords besides the container (SwarmSpawner's ``extra_task_spec``):
    limits, the agreement's two networks, no restart, and placement on ``node`` (the door's
    gateway is the hub's host, see the operator's guide for more nodes)."""
    return {
        "resources": _resources(limits.memory, limits.cpus, limits.pids),
        "networks": [{"Target": overlay}, {"Target": door.name}],
        "restart_policy": RestartPolicy(condition="none"),
        "placement": Placement(constraints=[f"node.id=={node}"]),
    }


def workspace_labels(agreement_id: str, researcher: str) -> dict[str, str]:
    """The service's own labels (revocation finds an agreement's services by them)."""
    return {LABEL_AGREEMENT: agreement_id, LABEL_RESEARCHER: researcher, LABEL_ROLE: "workspace"}


@dataclass(frozen=True)
class WorkerPlan:
    """How the agreement's worker runs: its image and the command that is the platform's
    CLI in it, where it may be placed, and the host paths it mounts (each read-only but the
    exports folder and, for SQLite, the database's folder, mounted at their own paths);
    ``tls``: its certificate and key (host paths, among ``read_only``), served on its port."""

    image: str
    cli: list[str]
    user: str
    constraints: list[str]
    environment: dict[str, str]
    read_only: dict[str, str] = field(default_factory=dict)  # host path -> inside
    writable: list[str] = field(default_factory=list)
    memory: str = "1536m"
    cpus: float = 1.0
    pids: int = 256
    tls: tuple[str, str] | None = None


def worker_service(agreement_id: str, overlay: str, plan: WorkerPlan) -> dict:
    """``create_service`` keywords for the agreement's worker: ``sandbox query-worker`` on
    its overlay only, hardened as a workspace, its host paths mounted at the same paths,
    serving TLS when the plan has a certificate."""
    tls = ["--tls-cert", plan.tls[0], "--tls-key", plan.tls[1]] if plan.tls else []
    mounts = [Mount(t, s, type="bind", read_only=True) for s, t in plan.read_only.items()]
    mounts += [Mount(p, p, type="bind") for p in plan.writable]
    mounts.append(_tmp("1g"))
    labels = {LABEL_AGREEMENT: agreement_id, LABEL_ROLE: "query-worker"}
    container = ContainerSpec(
        plan.image,
        [
            *plan.cli,
            "query-worker",
            "--agreement",
            agreement_id,
            "--host=0.0.0.0",
            f"--port={WORKER_PORT}",
            *tls,
        ],
        env=plan.environment,
        user=plan.user,
        read_only=True,
        cap_drop=["ALL"],
        init=True,
        mounts=mounts,
        sysctls=dict(_SYSCTLS),
        stop_grace_period=STOP_GRACE_NS,
        labels=labels,
        healthcheck=WORKER_HEALTH,
    )
    task = TaskTemplate(
        container,
        resources=_resources(plan.memory, plan.cpus, plan.pids),
        restart_policy=RestartPolicy(condition="any", delay=10**9),
        placement=Placement(constraints=plan.constraints),
        networks=[{"Target": overlay}],
    )
    return {
        "task_template": task,
        "name": worker_service_name(agreement_id),
        "labels": labels,
        "endpoint_spec": EndpointSpec(mode="dnsrr"),  # no IPVS needed: one task
    }


def ensure_worker(
    client: docker.DockerClient, agreement_id: str, overlay: str, plan: WorkerPlan
) -> str:
    """Start the agreement's worker, or restart it on the database just built: the file is
    replaced by a rename, and a bind mount keeps the file it was made with. Returns the
    service's id."""
    spec = worker_service(agreement_id, overlay, plan)
    try:
        current = client.api.inspect_service(spec["name"])
    except NotFound:
        return client.api.create_service(**spec)["ID"]
    version = current["Version"]["Index"]
    forced = current["Spec"]["TaskTemplate"].get("ForceUpdate", 0) + 1
    spec["task_template"]["ForceUpdate"] = forced
    client.api.update_service(current["ID"], version, **spec, fetch_current_spec=False)
    return current["ID"]


def agreement_services(client: docker.DockerClient, agreement_id: str) -> list[dict]:
    """Every service of the agreement: its workspaces and its worker."""
    return client.api.services(filters={"label": f"{LABEL_AGREEMENT}={agreement_id}"})


def remove_services(
    client: docker.DockerClient,
    services: Iterable[dict],
    limit: float = 120,
    *,
    labels: list[str] | None = None,
) -> list[str]:
    """Remove the services and return once no task of theirs is left on any node (the
    swarm deletes a task when its node reports its container shut down) and no container
    of theirs is left on this one, nor one with ``labels`` (those of services another
    removed just before, such as the hub stopping a server). Returns their names."""
    ids = {service["ID"]: service["Spec"]["Name"] for service in services}
    for service_id in ids:
        with contextlib.suppress(NotFound):  # a second revocation, or the hub, removed it
            client.api.remove_service(service_id)
    deadline = time.monotonic() + limit
    while _left(client, ids, labels):
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"services still have tasks or containers after {limit:g} s: "
                f"{sorted(ids.values()) or labels}"
            )
        time.sleep(0.3)
    return sorted(ids.values())


def _left(client: docker.DockerClient, ids: dict[str, str], labels: list[str] | None) -> bool:
    if ids and any(task["ServiceID"] in ids for task in client.api.tasks()):
        return True
    filters = [[f"{_SERVICE_LABEL}={sid}"] for sid in ids] + ([labels] if labels else [])
    return any(client.api.containers(all=True, filters={"label": f}) for f in filters)


def _task_labels(agreement_id: str, *more: str) -> list[str]:
    """The labels of the agreement's task containers (a service's task carries the
    service's id; the single-host backend's containers do not)."""
    return [f"{LABEL_AGREEMENT}={agreement_id}", _SERVICE_LABEL, *more]


def stop_workspaces(client: docker.DockerClient, agreement_id: str) -> list[str]:
    """Remove the agreement's workspace services, wherever they run (suspension, revocation)."""
    services = [
        s
        for s in agreement_services(client, agreement_id)
        if s["Spec"].get("Labels", {}).get(LABEL_ROLE) == "workspace"
    ]
    return remove_services(
        client, services, labels=_task_labels(agreement_id, f"{LABEL_ROLE}=workspace")
    )


def end_agreement(client: docker.DockerClient, agreement_id: str) -> list[str]:
    """Remove every service of the agreement, its worker's too (the agreement has ended)."""
    services = agreement_services(client, agreement_id)
    return remove_services(client, services, labels=_task_labels(agreement_id))
