"""The workspace half of ``sandbox run``: JupyterHub (with configurable-http-proxy) and one
query worker per provisioned agreement, as child processes, when Docker is available.

Development only (``sandbox run`` refuses production settings). What it starts:

* a query worker per active, provisioned agreement, listening on that agreement's network
  gateway (``sandbox query-worker``), on the port of ``SANDBOX_QUERY_SERVICE_URL`` if set —
  otherwise, or when it names the platform's own port, :data:`WORKER_PORT`: workspaces
  reach the query service on a port of its own, never the platform's API;
* JupyterHub from ``hub_config/jupyterhub_config.py``, told the platform's address and two
  freshly generated tokens: the one it presents to ``/api/hub/*`` and the scoped service
  token the platform presents to the hub to stop servers (Shanghai Art.26, 36).

Without a Docker engine (or without root, iptables, the workspace image or the proxy) it
says why and starts nothing: the rest of the platform runs as before.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import typer
from sqlalchemy import select

import hub_config
from hub_config.settings import HubSettings
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.cli import processes
from sandbox.cli.common import unit_of_work
from sandbox.provisioning.models import Workspace, WorkspaceStatus
from sandbox.settings import Settings

#: The query workers' port when SANDBOX_QUERY_SERVICE_URL points at the platform's own port.
WORKER_PORT = 8090
#: Seconds a child has to stop after SIGTERM before SIGKILL (the hub stops every server).
STOP_GRACE = 60
HUB_CONFIG = Path(hub_config.__file__).with_name("jupyterhub_config.py")
#: This environment's ``sandbox`` command (the workers run it as child processes).
SANDBOX_CLI = Path(sys.executable).with_name("sandbox")


def unavailable_reason(image: str) -> str | None:
    """Why workspaces cannot run here, or ``None`` when everything they need is present."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # ImportError, no socket, engine down: all mean "no Docker"
        return f"no Docker engine answers ({type(exc).__name__})"
    if not client.images.list(name=image):
        return f"the workspace image {image} is not built (images/build.sh)"
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        return "the per-agreement firewall rules need root and iptables"
    if shutil.which("configurable-http-proxy") is None:
        return "configurable-http-proxy is not installed (npm install -g configurable-http-proxy)"
    return None


def with_workspaces(settings: Settings) -> Settings:
    """``settings`` with the hub tokens (generated unless set) and a query service URL on a
    port of its own."""
    url = urlsplit(settings.query_service_url)
    chosen = "query_service_url" in settings.model_fields_set
    if not chosen or url.port in (None, settings.port):
        url = url._replace(netloc=f"{url.hostname}:{WORKER_PORT}")
    return settings.model_copy(
        update={
            "hub_service_token": settings.hub_service_token or secrets.token_urlsafe(32),
            "hub_api_token": settings.hub_api_token or secrets.token_urlsafe(32),
            "query_service_url": urlunsplit(url),
        }
    )


@dataclass
class WorkspaceRuntime:
    """The hub and the query workers started for ``sandbox run``; :meth:`stop` ends them."""

    settings: Settings
    hub_log: Path
    workers: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        """End the hub (it stops its proxy, culler and servers), then the workers, then
        whatever of theirs outlived them (a proxy whose hub had to be killed); remove the
        hub API's firewall chain whatever happened. Safe to call twice."""
        from sandbox.workspaces import firewall

        try:
            tree = [p for child in self.processes for p in processes.descendants(child.pid)]
            for process in reversed(self.processes):  # the hub first: no spawn meets a gap
                if process.poll() is None:
                    process.terminate()
                try:
                    process.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            processes.end(tree)
        finally:
            firewall.release_hub_api()


def _provisioned_agreements(settings: Settings) -> list[str]:
    with unit_of_work(settings.db_url) as session:
        rows = session.scalars(
            select(Workspace.agreement_id)
            .join(AgreementRecord, AgreementRecord.id == Workspace.agreement_id)
            .where(
                Workspace.status == WorkspaceStatus.provisioned,
                AgreementRecord.status == AgreementStatus.active,
            )
        )
        return list(rows)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when ``sandbox run`` dies (Linux
    ``PR_SET_PDEATHSIG``). uvicorn re-raises the signal that stopped it, so the parent
    may die before any ``finally`` runs; no hub or worker must outlive it."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _child(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # single-threaded here: safe before exec
        )


def start_workspaces(settings: Settings) -> WorkspaceRuntime:
    """Create each provisioned agreement's network, start its worker on the gateway, then
    the hub; all children log under ``<data_dir>/hub``. Interrupted half-way, it stops
    what it started."""
    state = (settings.data_dir / "hub").resolve()
    state.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SANDBOX_DATA_DIR": str(settings.data_dir.resolve()),
        "SANDBOX_DATABASE_URL": settings.db_url,
        "SANDBOX_QUERY_SERVICE_URL": settings.query_service_url,
    }
    runtime = WorkspaceRuntime(settings=settings, hub_log=state / "hub.log")
    try:
        _start(runtime, settings, env, state)
    except BaseException:  # a stop signal or a failure half-way: end what started
        runtime.stop()
        raise
    return runtime


def _start(runtime: WorkspaceRuntime, settings: Settings, env: dict[str, str], state: Path) -> None:
    """Each agreement's network and worker, the hub API's firewall chain, then the hub."""
    import docker

    from sandbox.provisioning.runtime import workspace_ports
    from sandbox.workspaces import firewall, network

    worker_port = urlsplit(settings.query_service_url).port
    client = docker.from_env()
    for agreement_id in _provisioned_agreements(settings):
        gateway = network.provision(client, agreement_id, workspace_ports(settings)).gateway
        command = [str(SANDBOX_CLI), "query-worker", "--agreement", agreement_id]
        command += ["--host", gateway, "--port", str(worker_port)]
        runtime.processes.append(_child(command, env, state / "workers.log", state))
        runtime.workers[agreement_id] = f"http://{gateway}:{worker_port}/qs"

    hub_env = {
        **env,
        "SANDBOX_HUB_PUBLIC_URL": settings.hub_url,
        "SANDBOX_HUB_API_PORT": str(settings.hub_api_port),
        "SANDBOX_HUB_PLATFORM_URL": f"http://{settings.host}:{settings.port}",
        "SANDBOX_HUB_PLATFORM_TOKEN": settings.hub_service_token,
        "SANDBOX_HUB_API_TOKEN": settings.hub_api_token,
        "SANDBOX_HUB_STATE_DIR": str(state),
    }
    firewall.guard_hub_api(settings.hub_api_port)  # it listens on every interface
    hub = [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)]
    runtime.processes.append(_child(hub, hub_env, runtime.hub_log, state))


def maybe_start_workspaces(settings: Settings) -> WorkspaceRuntime | None:
    """Start the hub and workers if this machine can run workspaces; otherwise say why."""
    reason = unavailable_reason(HubSettings().image)
    if reason is not None:
        typer.echo(
            f"workspaces:  not started — {reason}.\n"
            "             The rest of the platform runs; researchers cannot open a workspace."
        )
        return None
    runtime = start_workspaces(with_workspaces(settings))
    typer.echo(f"workspaces:  JupyterHub at {runtime.settings.hub_url}/ (log {runtime.hub_log})")
    for agreement_id, url in runtime.workers.items():
        typer.echo(f"             query worker for {agreement_id} at {url}")
    typer.echo("             agreements provisioned from now on get their worker at the next start")
    return runtime
