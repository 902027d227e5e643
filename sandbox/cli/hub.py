"""The workspace half of ``sandbox run``: JupyterHub (with configurable-http-proxy) and one
query worker per provisioned agreement, as child processes, when Docker is available.

Development only (``sandbox run`` refuses production settings). What it starts:

* a query worker per active, provisioned agreement, listening on that agreement's network
  gateway (``sandbox query-worker``), on the port of ``SANDBOX_QUERY_SERVICE_URL`` if set —
  otherwise, or when it names the platform's own port, :data:`WORKER_PORT`: workspaces
  reach the query service on a port of its own, never the platform's API. On Swarm
  (``SANDBOX_HUB_BACKEND=swarm``) the worker is the agreement's service on its overlay,
  started by provisioning (here for agreements provisioned before), removed at the end
  with the workspaces' services. An agreement
  the operator provisions while it runs gets its worker within seconds (a watcher looks
  every :data:`WATCH_INTERVAL_S`), and the hub waits for it before starting a workspace;
* JupyterHub from ``hub_config/jupyterhub_config.py``, told the platform's address and two
  freshly generated tokens: the one it presents to ``/api/hub/*`` and the scoped service
  token the platform presents to the hub to stop servers (Shanghai Art.26, 36).

Where a Docker engine answers it builds the workspace image first if it is missing
(images/build.sh, once; its progress on the terminal). Where none answers it starts the
*development workspace* instead (hub_config/dev_workspace.py): a local JupyterLab per
researcher and agreement with the same client, token and query workers on loopback, not
isolated, so only while every dataset on the platform is marked demo data. When neither can
run it says why and starts no hub; the researcher's pages say so too.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import typer
from sqlalchemy import select

import hub_config
from hub_config.settings import HubSettings
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.catalog.models import Dataset
from sandbox.cli import processes
from sandbox.cli.common import unit_of_work
from sandbox.provisioning.models import Workspace, WorkspaceStatus
from sandbox.settings import Settings
from sandbox.tls.development import CA_CERT, server_certificate

#: The query workers' port when SANDBOX_QUERY_SERVICE_URL points at the platform's own port.
WORKER_PORT = 8090
#: Seconds a child has to stop after SIGTERM before SIGKILL (the hub stops every server).
STOP_GRACE = 60
#: Seconds between two looks for agreements provisioned since ``sandbox run`` started.
WATCH_INTERVAL_S = 2.0
#: Seconds a spawn waits for its agreement's query worker to answer (one started moments
#: ago is still importing).
WORKER_START_S = 60.0
#: The development hub's query workers, agreement id -> URL (JSON, under the hub's state).
DEV_WORKERS_FILE = "dev-workers.json"
HUB_CONFIG = Path(hub_config.__file__).with_name("jupyterhub_config.py")
BUILD_SCRIPT = Path(hub_config.__file__).parents[1] / "images" / "build.sh"
#: This environment's ``sandbox`` command (the workers run it as child processes).
SANDBOX_CLI = Path(sys.executable).with_name("sandbox")


def _docker_client():  # type: ignore[no-untyped-def]
    """A client of an engine that answers, or the reason there is none."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # ImportError, no socket, engine down: all mean "no Docker"
        return None, f"no Docker engine answers ({type(exc).__name__})"
    return client, None


def _build_image(image: str) -> str | None:
    """Build the workspace image with its progress on the terminal; why not, if it failed."""
    typer.echo(f"workspaces:  building the workspace image {image} (once; cached afterwards)")
    done = subprocess.run([str(BUILD_SCRIPT), image], check=False)
    return None if done.returncode == 0 else f"images/build.sh failed (exit {done.returncode})"


def unavailable_reason(image: str) -> str | None:
    """Why Docker workspaces cannot run here (building a missing image first), or ``None``
    when everything they need is present."""
    client, reason = _docker_client()
    if client is None:
        return reason
    if not client.images.list(name=image) and (reason := _build_image(image)):
        return reason
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        return "the per-agreement firewall rules need root and iptables"
    return _proxy_missing()


def _proxy_missing() -> str | None:
    if shutil.which("configurable-http-proxy") is None:
        return "configurable-http-proxy is not installed (npm install -g configurable-http-proxy)"
    return None


def dev_unavailable_reason(settings: Settings) -> str | None:
    """Why the development workspace cannot run here, or ``None``. Its kernel can open the
    platform's files, so any dataset not marked demo data keeps it off."""
    if importlib.util.find_spec("jupyterlab") is None:
        return "JupyterLab is not installed (pip install -e '.[hub]')"
    with unit_of_work(settings.db_url) as session:
        real = sorted(
            ds.name for ds in session.scalars(select(Dataset)) if not ds.entry.get("demo_data")
        )
    if real:
        return (
            "the development workspace is not isolated and serves only demo data, but "
            f"datasets {', '.join(real)} are not marked demo_data"
        )
    return _proxy_missing()


def development_tls(settings: Settings) -> Path | None:
    """The development CA's directory when the platform serves HTTPS with it (``sandbox
    run --tls``): the query workers then get certificates from it for their addresses."""
    directory = (settings.data_dir / "tls").resolve()
    if settings.tls_ca is not None and settings.tls_ca.resolve() == directory / CA_CERT:
        return directory
    return None


def with_workspaces(settings: Settings) -> Settings:
    """``settings`` with the hub tokens (generated unless set) and a query service URL on a
    port of its own (``https``, and the hub's public URL too, when the platform serves the
    development CA's TLS)."""
    url = urlsplit(settings.query_service_url)
    hub_url = urlsplit(settings.hub_url)
    chosen = "query_service_url" in settings.model_fields_set
    if not chosen or url.port in (None, settings.port):
        url = url._replace(netloc=f"{url.hostname}:{WORKER_PORT}")
    if development_tls(settings) is not None:  # workers and hub serve TLS too, verified by the CA
        url, hub_url = url._replace(scheme="https"), hub_url._replace(scheme="https")
    return settings.model_copy(
        update={
            "hub_service_token": settings.hub_service_token or secrets.token_urlsafe(32),
            "hub_api_token": settings.hub_api_token or secrets.token_urlsafe(32),
            "query_service_url": urlunsplit(url),
            "hub_url": urlunsplit(hub_url),
        }
    )


@dataclass
class WorkspaceRuntime:
    """The hub and the query workers started for ``sandbox run``; :meth:`stop` ends them."""

    settings: Settings
    hub_log: Path
    workers: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Whether the hub API's firewall chain was set (Docker workspaces only).
    firewall: bool = True
    #: The children's environment and working directory (the hub's state directory).
    env: dict[str, str] = field(default_factory=dict)
    state: Path = Path(".")
    _stopping: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None

    def start_new_workers(self) -> list[str]:
        """Start a query worker for every active, provisioned agreement that has none yet;
        return their ids. The development hub reads which is whose from a file; a spawn
        waits for the worker to answer (``SANDBOX_HUB_QUERY_SERVICE_WAIT``)."""
        started = []
        for agreement_id in _provisioned_agreements(self.settings):
            if agreement_id in self.workers:
                continue
            if self.settings.hub_backend == "swarm":
                self.workers[agreement_id] = _swarm_worker(self.settings, agreement_id)
            else:
                host, port = self._worker_address(agreement_id)
                _worker(self, self.env, self.state, agreement_id, host, port)
            started.append(agreement_id)
        if started and self.settings.workspace_kind == "development":
            _write_dev_workers(self.state, self.workers)
        return started

    def _worker_address(self, agreement_id: str) -> tuple[str, int]:
        """Docker: the agreement network's gateway and the query service's port (the
        network exists from provisioning; looking it up is idempotent). Development:
        loopback, on the query service's port and the ports after it."""
        port = urlsplit(self.settings.query_service_url).port or WORKER_PORT
        if self.settings.workspace_kind != "docker":
            return "127.0.0.1", port + len(self.workers)
        import docker

        from sandbox.provisioning.runtime import workspace_ports
        from sandbox.workspaces import network

        client = docker.from_env()
        return network.provision(client, agreement_id, workspace_ports(self.settings)).gateway, port

    def watch(self) -> None:
        """Start the watcher: agreements provisioned from now on get their worker within
        :data:`WATCH_INTERVAL_S` seconds. A failure is logged and tried again."""

        def loop() -> None:
            while not self._stopping.wait(WATCH_INTERVAL_S):
                try:
                    for agreement_id in self.start_new_workers():
                        typer.echo(
                            f"workspaces:  query worker for {agreement_id} at "
                            f"{self.workers[agreement_id]}"
                        )
                except Exception as exc:  # the next look tries again; the platform runs on
                    typer.echo(f"workspaces:  starting a query worker failed: {exc!r}", err=True)

        self._watcher = threading.Thread(target=loop, name="query-worker-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """End the watcher, then the hub (it stops its proxy, culler and servers), then the
        workers, then whatever of theirs outlived them (a proxy whose hub had to be killed);
        remove the hub API's firewall chain whatever happened. Safe to call twice."""
        from sandbox.workspaces import firewall

        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
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
            if self.settings.hub_backend == "swarm" and self.workers:
                _end_swarm_services(list(self.workers))
        finally:
            if self.firewall:
                firewall.release_hub_api()


def _swarm_worker(settings: Settings, agreement_id: str) -> str:
    """On Swarm (``SANDBOX_HUB_BACKEND=swarm``) an agreement's worker is its service, which
    provisioning starts; one provisioned before (the demo's, seeded without a hub) gets it
    now. Returns where its workspaces reach it."""
    import docker

    from hub_config.swarm import worker_url
    from sandbox.provisioning import swarm
    from sandbox.workspaces.swarm_services import worker_service_name

    client = docker.from_env()
    try:
        client.api.inspect_service(worker_service_name(agreement_id))
    except docker.errors.NotFound:
        swarm.deliver(client, settings, agreement_id)
    return worker_url(agreement_id, tls=swarm.worker_tls(settings))


def _end_swarm_services(agreement_ids: list[str]) -> None:
    """Remove the agreements' services, workers and workspaces: on one host the workers'
    processes end with ``sandbox run`` and the hub stops every server, while a hub on Swarm
    leaves them running for the next one (the agreements' networks stay, as there)."""
    import docker

    from sandbox.workspaces.swarm_services import agreement_services, remove_services

    client = docker.from_env()
    remove_services(client, [s for a in agreement_ids for s in agreement_services(client, a)])


def _write_dev_workers(state: Path, workers: dict[str, str]) -> None:
    """Tell the development hub which worker is whose (replaced whole, never half-written)."""
    partial = state / f".{DEV_WORKERS_FILE}.partial"
    partial.write_text(json.dumps(workers), encoding="utf-8")
    partial.replace(state / DEV_WORKERS_FILE)


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


#: ``prctl`` option: the signal a child gets when the thread that started it ends.
PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when ``sandbox run`` dies (Linux
    ``PR_SET_PDEATHSIG``). uvicorn re-raises the signal that stopped it, so the parent
    may die before any ``finally`` runs; no hub or worker must outlive it. (The signal
    comes when the thread that started the child ends: the main thread, or the watcher,
    which lives until :meth:`WorkspaceRuntime.stop`.) Only the call itself runs in the
    child: libc was loaded before the fork, as a child of a threaded process must not."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def _child(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # one call, nothing loaded or locked: safe before exec
        )


def start_workspaces(settings: Settings) -> WorkspaceRuntime:
    """Start each provisioned agreement's worker, then the hub, as ``settings.workspace_kind``
    says, then the watcher that starts the workers of agreements provisioned later; all
    children log under ``<data_dir>/hub``. Interrupted half-way, it stops what it started."""
    state = (settings.data_dir / "hub").resolve()
    state.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SANDBOX_DATA_DIR": str(settings.data_dir.resolve()),
        "SANDBOX_DATABASE_URL": settings.db_url,
        "SANDBOX_QUERY_SERVICE_URL": settings.query_service_url,
    }
    if settings.tls_ca is not None:  # the hub verifies the platform and workers against it
        env["SANDBOX_TLS_CA"] = str(settings.tls_ca)
    docker = settings.workspace_kind == "docker"
    runtime = WorkspaceRuntime(
        settings=settings, hub_log=state / "hub.log", firewall=docker, env=env, state=state
    )
    try:
        if docker:
            from sandbox.workspaces import firewall

            runtime.start_new_workers()
            firewall.guard_hub_api(settings.hub_api_port)  # the hub API listens everywhere
            hub_env = {"SANDBOX_HUB_SPAWNER": "docker"}
        else:
            _write_dev_workers(state, {})
            runtime.start_new_workers()
            hub_env = {
                "SANDBOX_HUB_SPAWNER": "development",
                "SANDBOX_HUB_DEV_WORKERS_FILE": str(state / DEV_WORKERS_FILE),
            }
        hub_env["SANDBOX_HUB_QUERY_SERVICE_WAIT"] = str(WORKER_START_S)
        _start_hub(runtime, {**env, **hub_env}, state)
        runtime.watch()
    except BaseException:  # a stop signal or a failure half-way: end what started
        runtime.stop()
        raise
    return runtime


def _worker(runtime: WorkspaceRuntime, env: dict[str, str], state: Path, agreement_id: str,
            host: str, port: int) -> str:  # fmt: skip
    """Start ``agreement_id``'s query worker on ``host:port``, with TLS (a development
    certificate for ``host``) when the platform serves it; return its URL."""
    command = [str(SANDBOX_CLI), "query-worker", "--agreement", agreement_id]
    command += ["--host", host, "--port", str(port)]
    scheme = "http"
    if (tls := development_tls(runtime.settings)) is not None:
        issued = server_certificate(tls, f"worker-{agreement_id.lower()}", [host])
        command += ["--tls-cert", str(issued.cert), "--tls-key", str(issued.key)]
        scheme = "https"
    runtime.processes.append(_child(command, env, state / "workers.log", state))
    runtime.workers[agreement_id] = url = f"{scheme}://{host}:{port}/qs"
    return url


def _start_hub(runtime: WorkspaceRuntime, env: dict[str, str], state: Path) -> None:
    settings = runtime.settings
    hub_env = {
        **env,
        "SANDBOX_HUB_PUBLIC_URL": settings.hub_url,
        "SANDBOX_HUB_API_PORT": str(settings.hub_api_port),
        "SANDBOX_HUB_PLATFORM_URL": f"{settings.scheme}://{settings.host}:{settings.port}",
        "SANDBOX_HUB_PLATFORM_TOKEN": settings.hub_service_token,
        "SANDBOX_HUB_API_TOKEN": settings.hub_api_token,
        "SANDBOX_HUB_STATE_DIR": str(state),
    }
    if (tls := development_tls(settings)) is not None:  # the proxy serves HTTPS
        hub_host = urlsplit(settings.hub_url).hostname or "127.0.0.1"
        issued = server_certificate(tls, "hub", [hub_host, "localhost", "127.0.0.1"])
        hub_env["SANDBOX_HUB_SSL_CERT"] = str(issued.cert)
        hub_env["SANDBOX_HUB_SSL_KEY"] = str(issued.key)
    hub = [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)]
    runtime.processes.append(_child(hub, hub_env, runtime.hub_log, state))


def _kind(settings: Settings, hub: HubSettings) -> tuple[str | None, str]:
    """The workspaces to start (``docker``, ``development`` or ``None``) and, for none,
    why."""
    if hub.start == "none":
        return None, "SANDBOX_HUB_START=none"
    docker_answers = hub.start == "docker" or (
        hub.start == "auto" and _docker_client()[0] is not None
    )
    if docker_answers:
        reason = unavailable_reason(hub.image)
        return (None, reason) if reason else ("docker", "")
    reason = dev_unavailable_reason(settings)
    return (None, reason) if reason else ("development", "")


def maybe_start_workspaces(settings: Settings) -> tuple[Settings, WorkspaceRuntime | None]:
    """Start the hub and workers this machine can run: Docker workspaces, else development
    workspaces; otherwise say why (the platform's settings then carry the reason, which
    the researcher's pages show instead of a link)."""
    kind, reason = _kind(settings, HubSettings())
    if kind is None:
        typer.echo(
            f"workspaces:  not started — {reason}.\n"
            "             The rest of the platform runs; researchers cannot open a workspace."
        )
        return settings.model_copy(update={"workspaces_missing": reason}), None
    ready = with_workspaces(settings).model_copy(update={"workspace_kind": kind})
    runtime = start_workspaces(ready)
    typer.echo(f"workspaces:  JupyterHub at {ready.hub_url}/ (log {runtime.hub_log})")
    if kind == "development":
        typer.echo("             development workspaces: local JupyterLab processes, NOT isolated")
    for agreement_id, url in runtime.workers.items():
        typer.echo(f"             query worker for {agreement_id} at {url}")
    typer.echo("             agreements provisioned from now on get their worker within seconds")
    return ready, runtime
