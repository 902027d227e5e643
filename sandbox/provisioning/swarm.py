"""The platform's side of the Swarm backend (``SANDBOX_HUB_BACKEND=swarm``): at
provisioning, the agreement's overlay and door; after each build, its database delivered
to the worker's node and the worker (re)started there; at suspension or the end, its
services removed everywhere before the call returns.

Delivery of the database: the worker bind-mounts the agreement's DuckDB file, its data key
and the master keys read-only from the platform's data directory and key store at the same
paths, and is constrained to nodes that have them: by default the node that built it (one
host), or, with the data directory and key store on a filesystem every labelled node
mounts at the same paths, the constraint ``node.labels.sandbox.data==shared``
(``SANDBOX_HUB_SWARM_WORKER_CONSTRAINTS``).
A rebuild replaces the file by a rename, so the worker is restarted onto the new one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from query_guard.keys import NOISE_SECRET_FILE, key_path
from sandbox.errors import Kind, SandboxError
from sandbox.provisioning.database import database_path
from sandbox.provisioning.runtime import WorkspaceStop
from sandbox.settings import Settings
from sandbox.workspaces import network, swarm_network, swarm_services

#: The hub's ``backend`` (``SANDBOX_HUB_BACKEND``) that runs workspaces as swarm services.
BACKEND = "swarm"
#: Where the development worker finds this host's Python (``worker_from_host``).
HOST_PYTHON = "/opt/sandbox-python"
#: This host's fonts, which the development worker draws figures with.
HOST_FONTS = Path("/usr/share/fonts")


class SwarmRefused(SandboxError):
    """A Swarm setting that would run a service less hardened than the rules require, or no
    swarm to run it on: an operator's configuration error, raised before the service starts
    (a provisioning refused so rolls back)."""

    rule = "swarm-inactive"
    kind = Kind.unavailable


class SwarmSettings(BaseSettings):
    """What only the Swarm backend needs (prefix ``SANDBOX_HUB_SWARM_``), read by the hub
    and the platform alike."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_HUB_SWARM_", extra="ignore")

    #: The platform's image (``sandbox`` installed), which every worker node has.
    worker_image: str = "sandbox-platform:latest"
    #: The platform's CLI in that image.
    worker_cli: list[str] = ["sandbox"]
    #: Development on one node only: run the worker from this host's checkout and Python,
    #: mounted read-only into ``worker_image`` (any image with glibc); refused in production.
    worker_from_host: bool = False
    #: Placement of workers ("": the node that provisions, which holds the files).
    worker_constraints: list[str] = []
    #: The worker's ``uid:gid`` ("": the platform's own, which owns the files it mounts).
    worker_user: str = ""
    worker_memory: str = "1536m"
    worker_cpus: float = 1.0
    #: The workers' certificates: ``<service>.pem`` and ``<service>-key.pem`` for the
    #: service named ``<service>`` (:func:`swarm_services.worker_service_name`), issued
    #: for that name by the CA workspaces trust (``SANDBOX_TLS_CA``).
    worker_tls_dir: Path | None = None


def this_node(client) -> str:  # type: ignore[no-untyped-def]
    """The swarm node id of the engine the platform talks to."""
    return client.info()["Swarm"]["NodeID"]


def _worker_cli(
    swarm: SwarmSettings, settings: Settings
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """(command, read-only mounts host -> inside, environment) of the platform's CLI."""
    if not swarm.worker_from_host:
        return list(swarm.worker_cli), {}, {}
    if settings.environment == "production":
        raise SwarmRefused(
            "SANDBOX_HUB_SWARM_WORKER_FROM_HOST runs the worker from this host's checkout, a "
            "development shortcut: in production workers run the platform's image",
            rule="swarm-worker-from-host",
        )
    repo = str(Path(__file__).resolve().parents[2])  # with its .venv
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    site = Path(sys.prefix).resolve() / "lib" / f"python{version}" / "site-packages"
    environment = {
        "PYTHONPATH": f"{repo}:{site}",
        "LD_LIBRARY_PATH": f"{HOST_PYTHON}/lib",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLCONFIGDIR": "/tmp/matplotlib",
    }
    command = [
        f"{HOST_PYTHON}/bin/python{version}",
        "-c",
        "from sandbox.cli.main import app; app()",
    ]
    mounts = {repo: repo, str(Path(sys.base_prefix).resolve()): HOST_PYTHON}
    if HOST_FONTS.is_dir():  # the figures' CJK font, which the platform's image installs
        mounts[str(HOST_FONTS)] = str(HOST_FONTS)
    return command, mounts, environment


def _user(swarm: SwarmSettings, settings: Settings) -> str:
    user = swarm.worker_user or f"{os.getuid()}:{os.getgid()}"
    if user.split(":")[0] in {"0", "root"} and settings.environment == "production":
        raise SwarmRefused(
            f"a query worker does not run as root (SANDBOX_HUB_SWARM_WORKER_USER={user}, or "
            "the platform's own user): run the platform and its workers as the user that "
            "owns the data directory",
            rule="swarm-worker-root",
        )
    return user


def worker_tls(settings: Settings) -> bool:
    """Whether workers serve TLS, and workspaces reach them over ``https``: in production
    (a worker refuses to serve without, rule ``tls-worker``) or with an ``https`` query
    service (``SANDBOX_QUERY_SERVICE_URL``, which the hub and the platform both read)."""
    return settings.environment == "production" or settings.query_service_url.startswith("https:")


def worker_certificate(
    swarm: SwarmSettings, settings: Settings, agreement_id: str
) -> tuple[str, str] | None:
    """The worker's certificate and key, as the operator issued them into
    ``worker_tls_dir``; refused when there are none and workers serve TLS: better not
    provisioned than unreachable."""
    name = swarm_services.worker_service_name(agreement_id)
    folder = (swarm.worker_tls_dir or Path("$SANDBOX_HUB_SWARM_WORKER_TLS_DIR")).resolve()
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    if swarm.worker_tls_dir is not None and cert.is_file() and key.is_file():
        return str(cert), str(key)
    if worker_tls(settings):
        raise SwarmRefused(
            f"the query worker {name} has no certificate: workspaces reach it over TLS "
            "(production, or an https query service), so issue one for that name from the "
            f"CA workspaces trust into {cert}, and its key into {key}",
            rule="swarm-worker-tls",
        )
    return None


def worker_plan(
    settings: Settings, swarm: SwarmSettings, agreement_id: str, node: str
) -> swarm_services.WorkerPlan:
    """The agreement's worker: read-only, its database, data key and master keys, the keys
    of the platform database's sealed fields, the noise secret and its pseudonym key, its
    certificate and key; the exports folder writable, and the platform's database (its
    folder, for SQLite; PostgreSQL is reached over the network)."""
    command, code, code_environment = _worker_cli(swarm, settings)
    tls = worker_certificate(swarm, settings, agreement_id)
    store = settings.key_store_path.resolve()
    keys = settings.keys_dir.resolve()
    exports = (settings.data_dir / "exports").resolve()
    exports.mkdir(parents=True, exist_ok=True)
    files = [
        database_path(settings, agreement_id),
        store / "masters",
        store / "agreements" / f"{agreement_id}.json",
        keys / NOISE_SECRET_FILE,
    ]
    if key_path(keys, agreement_id).exists():
        files.append(key_path(keys, agreement_id))
    if (store / "fields").is_dir():  # the keys of the platform database's sealed columns
        files.append(store / "fields")
    files += [Path(path) for path in tls or ()]
    read_only = {str(path.resolve()): str(path.resolve()) for path in files} | code
    writable = [str(exports)]
    url = make_url(settings.db_url)
    if url.get_backend_name() == "sqlite" and url.database:
        writable.append(str(Path(url.database).resolve().parent))
    environment = {
        "SANDBOX_ENVIRONMENT": settings.environment,
        "SANDBOX_DATA_DIR": str(settings.data_dir.resolve()),
        "SANDBOX_KEY_STORE_DIR": str(store),
        "SANDBOX_DATABASE_URL": url.render_as_string(hide_password=False),
        "SANDBOX_TIMEZONE": settings.timezone,
        "SANDBOX_KEY_WRAP_ALGORITHM": settings.key_wrap_algorithm,
        **code_environment,
    }
    if settings.metrics_token:
        environment["SANDBOX_METRICS_TOKEN"] = settings.metrics_token
    return swarm_services.WorkerPlan(
        image=swarm.worker_image,
        cli=command,
        user=_user(swarm, settings),
        constraints=swarm.worker_constraints or [f"node.id=={node}"],
        environment=environment,
        read_only=read_only,
        writable=writable,
        memory=swarm.worker_memory,
        cpus=swarm.worker_cpus,
        tls=tls,
    )


def prepare(client, settings: Settings, agreement_id: str) -> str:  # type: ignore[no-untyped-def]
    """At provisioning: the agreement's overlay and its door, whose firewall lets a
    workspace reach the hub API on the host and nothing else. Returns the overlay's name."""
    refuse_without_swarm(client)
    return swarm_network.provision(client, agreement_id, [settings.hub_api_port]).overlay


def deliver(client, settings: Settings, agreement_id: str) -> str:  # type: ignore[no-untyped-def]
    """After a build: (re)start the agreement's worker on a node that holds its files."""
    refuse_without_swarm(client)
    plan = worker_plan(settings, SwarmSettings(), agreement_id, this_node(client))
    overlay = swarm_network.provision(client, agreement_id, [settings.hub_api_port]).overlay
    return swarm_services.ensure_worker(client, agreement_id, overlay, plan)


def refuse_without_swarm(client) -> None:  # type: ignore[no-untyped-def]
    """Services need a manager of an active swarm (the hub's and the platform's engine)."""
    if not swarm_network.swarm_active(client):
        raise SwarmRefused(
            "SANDBOX_HUB_BACKEND=swarm but this Docker engine is not a manager of an active "
            "swarm: run `docker swarm init` (.ci/setup.sh does) or point DOCKER_HOST at a "
            "manager",
            rule="swarm-inactive",
        )


def stop(client, stop: WorkspaceStop, *, ended: bool) -> WorkspaceStop:  # type: ignore[no-untyped-def]
    """Remove the agreement's workspace services (and, once it has ended, its worker, homes
    and networks), returning when none has a task left on any node."""
    agreement_id = stop.agreement_id
    if not ended:
        stop.containers_removed = len(swarm_services.stop_workspaces(client, agreement_id))
        return stop
    stop.containers_removed = len(swarm_services.end_agreement(client, agreement_id))
    stop.homes_destroyed = network.destroy_home_volumes(client, agreement_id)
    swarm_network.teardown(client, agreement_id)
    return stop
