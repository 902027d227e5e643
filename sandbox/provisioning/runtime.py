"""What a change of agreement status does to running workspaces, outside the database.

``change_status`` is a pure database service: it moves the agreement and revokes
its tokens in one transaction. Once that has committed, the HTTP route and the CLI
call :func:`enforce_agreement_status`, which makes the running world agree:

* an agreement that is no longer active has its servers stopped through the hub's
  REST API (Shanghai Art.26, 36: access closed; R11: suspension reaches every
  workspace), and any container the hub did not remove is removed through Docker,
  so none runs when the call returns;
* an agreement that has ended also loses its home volumes, network and firewall
  rules (R16, Rizhao Art.31: a workspace's files are destroyed when it ends).

Each enforcement is one ``workspace.stop`` audit event (R7). All of this happens
only when the platform runs workspaces through a hub (``hub_api_token`` set):
without a hub there are no workspace containers to stop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from sandbox.agreements.lifecycle import ENDED
from sandbox.agreements.models import AgreementStatus
from sandbox.agreements.service import get_agreement
from sandbox.audit.record import record
from sandbox.errors import Kind, SandboxError
from sandbox.settings import Settings
from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_RESEARCHER, server_name

if TYPE_CHECKING:  # the docker SDK comes with the ``hub`` extra, imported only when used
    import docker

#: Opens one transaction on the platform database (``Db.tx`` or the CLI's ``unit_of_work``).
OpenTransaction = Callable[[], AbstractContextManager[Session]]


class WorkspaceRuntimeUnavailable(SandboxError):
    """The platform runs workspaces through a hub but cannot reach the Docker engine."""

    rule = "workspace-runtime"
    article = "Shanghai Art.26, 36"
    kind = Kind.unavailable


@dataclass
class WorkspaceStop:
    """What stopping one agreement's workspaces did (the ``workspace.stop`` details)."""

    agreement_id: str
    status: str
    servers_stopped: list[str] = field(default_factory=list)
    containers_removed: int = 0
    homes_destroyed: list[str] = field(default_factory=list)
    hub_error: str | None = None
    docker_error: str | None = None

    def details(self) -> dict[str, object]:
        return {
            "agreement_status": self.status,
            "servers_stopped": self.servers_stopped,
            "containers_removed_by_docker": self.containers_removed,
            "homes_destroyed": self.homes_destroyed,
            "hub_error": self.hub_error,
            "docker_error": self.docker_error,
        }


def runs_workspaces(settings: Settings) -> bool:
    """Whether this platform runs workspaces through a hub it can stop."""
    return bool(settings.hub_api_token)


def uses_docker(settings: Settings) -> bool:
    """Whether its workspaces are Docker containers (a development workspace is a local
    process the hub alone starts and stops)."""
    return runs_workspaces(settings) and settings.workspace_kind == "docker"


def workspace_ports(settings: Settings) -> list[int]:
    """The only host ports a workspace may reach on its gateway: the query service's and
    the hub API's (THREAT_MODEL boundary 4)."""
    url = urlsplit(settings.query_service_url)
    return [url.port or (443 if url.scheme == "https" else 80), settings.hub_api_port]


def _docker() -> docker.DockerClient:
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure means the engine cannot be used
        raise WorkspaceRuntimeUnavailable(
            f"the Docker engine does not answer ({type(exc).__name__}); workspaces cannot be "
            "provisioned or stopped until it runs"
        ) from exc
    return client


def prepare_network(settings: Settings, agreement_id: str) -> str | None:
    """At provisioning: create the agreement's internal network and its firewall rules
    (allowing only :func:`workspace_ports`). Returns the network name, or ``None`` when
    the platform runs no Docker workspaces."""
    if not uses_docker(settings):
        return None
    if settings.hub_backend == "swarm":
        from sandbox.provisioning import swarm

        return swarm.prepare(_docker(), settings, agreement_id)
    from sandbox.workspaces import network

    return network.provision(_docker(), agreement_id, workspace_ports(settings)).name


def deliver_database(settings: Settings, agreement_id: str) -> None:
    """After a build: on Swarm, (re)start the agreement's query worker on its database;
    on one host, ``sandbox run`` runs workers itself."""
    if uses_docker(settings) and settings.hub_backend == "swarm":
        from sandbox.provisioning import swarm

        swarm.deliver(_docker(), settings, agreement_id)


def resource_use(settings: Settings, agreement_id: str) -> list[dict[str, object]] | None:
    """Memory, processes and CPU time of the agreement's running workspaces; ``None`` when
    this platform runs no Docker workspaces."""
    if not uses_docker(settings):
        return None
    from sandbox.workspaces.usage import workspace_usage

    return workspace_usage(_docker(), agreement_id)


def _stop(
    settings: Settings, agreement_id: str, researchers: Iterable[str], status: str
) -> WorkspaceStop:
    """Stop through the hub, then remove through Docker whatever is left; if the agreement
    has ended, destroy its homes, network and firewall rules too. The hub is asked even
    when Docker cannot be reached, and the failure is kept in ``docker_error``."""
    from sandbox.workspaces import network
    from sandbox.workspaces.hub_api import HubApi, HubUnavailable

    stop = WorkspaceStop(agreement_id=agreement_id, status=status)
    client = None
    try:
        client = _docker() if uses_docker(settings) else None
    except WorkspaceRuntimeUnavailable as exc:
        stop.docker_error = exc.message
    running: set[str] = set()
    if client is not None:
        label = {"label": f"{LABEL_AGREEMENT}={agreement_id}"}
        for container in client.containers.list(all=True, filters=label):
            running.add(container.labels.get(LABEL_RESEARCHER, ""))
    ended = status in ENDED
    name = server_name(agreement_id)
    try:
        with HubApi(settings.hub_url, settings.hub_api_token, ca=settings.tls_ca) as hub:
            for username in sorted({*researchers, *running} - {""}):
                if hub.stop_server(username, name, remove=ended):
                    stop.servers_stopped.append(f"{username}/{name}")
    except HubUnavailable as exc:
        stop.hub_error = str(exc)
    if client is None:
        return stop
    # Whatever the hub did or could not do, nothing of the agreement keeps running.
    if settings.hub_backend == "swarm":
        from sandbox.provisioning import swarm

        return swarm.stop(client, stop, ended=ended)
    stop.containers_removed = network.stop_workspaces(client, agreement_id)
    if ended:
        stop.homes_destroyed = network.destroy_home_volumes(client, agreement_id)
        network.teardown(client, agreement_id)  # the network and its firewall rules
    return stop


def enforce_agreement_status(
    settings: Settings, transaction: OpenTransaction, agreement_ids: Iterable[str], *, actor: str
) -> list[WorkspaceStop]:
    """Stop the workspaces of every listed agreement that is no longer active, after its
    status change (and token revocation) has committed; record ``workspace.stop``.

    Returns when no container of those agreements runs. When the Docker engine cannot
    be reached, the hub is still asked, the event still recorded, and then
    :class:`WorkspaceRuntimeUnavailable` says that no container could be confirmed gone.
    """
    if not runs_workspaces(settings):
        return []
    with transaction() as session:
        targets = [
            (rec.id, list(rec.spec["researchers"]), rec.status)
            for rec in (get_agreement(session, a) for a in agreement_ids)
            if rec.status != AgreementStatus.active
        ]
    stops = [_stop(settings, *target) for target in targets]
    if stops:
        with transaction() as session:
            for stop in stops:
                record(
                    session,
                    actor=actor,
                    action="workspace.stop",
                    object=f"agreement:{stop.agreement_id}",
                    details=stop.details(),
                )
    unconfirmed = [stop for stop in stops if stop.docker_error]
    if unconfirmed:
        raise WorkspaceRuntimeUnavailable(
            "; ".join(
                f"agreement {stop.agreement_id} is {stop.status} and its tokens are revoked, "
                f"but no container could be confirmed gone: {stop.docker_error}"
                for stop in unconfirmed
            )
        )
    return stops
