"""A capacity model, measured on this machine (issue 17 item 4): what one workspace, one
agreement's query worker, one audit append and one agreement's provisioning cost, how each
grows, and how many hosts 1,000 agreements and 5,000 researchers would need from them.

Run as root on a swarm manager with the workspace image and PostgreSQL (.ci/setup.sh,
then ``. var/ci/env``): ``.venv/bin/python -m benchmarks.bench_capacity``. Measured:

- **spawn time and idle memory per workspace** through our hub, with DockerSpawner and
  with ``SANDBOX_HUB_BACKEND=swarm``, the same image, spawns alternating between the two
  (each agreement's networks made first, as provisioning makes them);
- **provisioning per agreement on Swarm**: the platform's own ``provision()`` (overlay,
  door and its firewall, the agreement's encrypted database, its worker's service) until
  the worker's task runs, which is once its port answers (the service's health check);
  first for five agreements with the real ``sandbox query-worker``,
  whose **idle memory** is measured, then as agreements accumulate to 10, 50 and 100, all
  kept running, their workers' services each running a bare HTTP server instead (100 real
  workers need more memory than this machine has beside its other work); the figure at a
  count is the median over the last five agreements up to it;
- **agreement networks**: the overlays and doors made, and how many their pools hold
  (the swarm's, and the doors' :data:`~sandbox.workspaces.swarm_network.DOOR_POOL`); and
  single-host agreement bridges made up to the same count from Docker's local address
  pools, when the engine has pools configured (.ci/setup.sh's daemon.json): with its
  built-in ones (about 30 networks) that would refuse every other network on this machine
  while it lasts, so their room is then only counted;
- **audit appends per second on PostgreSQL**: query events, each committed and linked as a
  query worker records one (``advance``), by 1 and by 4 writer processes.

``BENCH_CAPACITY_AGREEMENTS=3,6`` (counts), ``BENCH_CAPACITY_SPAWNS`` and
``BENCH_CAPACITY_REAL_WORKERS`` make a quicker run; only the defaults are the benchmark.
Targets, as ratios in one run: Swarm spawn / DockerSpawner spawn <= 1.5x (medians);
provisioning per agreement at the largest count / at the smallest <= 2x. Everything it
makes is removed at the end, also on failure.
"""

from __future__ import annotations

import ipaddress
import math
import multiprocessing
import multiprocessing.synchronize
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.agreements.service import import_agreement
from sandbox.audit.advance import advance
from sandbox.audit.record import record
from sandbox.contracts import Agreement, load_agreement
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import field_keys, platform_engine
from sandbox.demo.generate import DEMO_AGREEMENTS_DIR
from sandbox.demo.seed import seed_demo
from sandbox.provisioning.runtime import WorkspaceStop
from sandbox.provisioning.service import provision
from sandbox.provisioning.swarm import stop as end_on_swarm
from sandbox.settings import Settings
from sandbox.workcalendar import calendar_from_settings
from sandbox.workspaces import network, swarm_network, swarm_services
from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_ROLE, server_name
from sandbox.workspaces.swarm_network import DOOR_POOL, used_subnets
from tests.workspaces.control_plane_stub import HUB_TOKEN, ControlPlaneStub
from tests.workspaces.hub import Hub, free_port

IMAGE = os.environ.get("SANDBOX_HUB_IMAGE", "sandbox-workspace:latest")
COUNTS = [int(n) for n in os.environ.get("BENCH_CAPACITY_AGREEMENTS", "10,50,100").split(",")]
SPAWNS = int(os.environ.get("BENCH_CAPACITY_SPAWNS", "5"))
#: Agreements whose median is the provisioning figure at a count (those just before it).
WINDOW = 5
#: Agreements provisioned with the real query worker, whose memory is measured.
REAL_WORKERS = int(os.environ.get("BENCH_CAPACITY_REAL_WORKERS", "5"))
WRITERS = (1, 4)
APPENDS_EACH = 400
#: What the model leaves each host for its own engine, kernel and page cache.
HOST_RESERVE_MIB = 2048
#: A workspace's memory limit by default (SANDBOX_HUB_MEMORY).
WORKSPACE_LIMIT_MIB = 2048
AGREEMENTS, RESEARCHERS = 1_000, 5_000
TARGET_SPAWN, TARGET_PROVISION = 1.5, 2.0
MIB = 2**20
DEMO_AGREEMENT = DEMO_AGREEMENTS_DIR / "outpatient_visits_aggregate.yaml"


def memory_mib(client: docker.DockerClient, container: str) -> float:
    """What the container's processes use, without the file cache it could give back
    (as ``docker stats`` shows it)."""
    memory = client.api.stats(container, stream=False)["memory_stats"]
    cached = memory.get("stats", {})
    cache = cached.get("total_inactive_file", cached.get("inactive_file", 0))
    return (memory["usage"] - cache) / MIB


def containers(client: docker.DockerClient, role: str, agreements: list[str]) -> list[str]:
    ids = []
    for agreement_id in agreements:
        found = client.api.containers(
            filters={"label": [f"{LABEL_AGREEMENT}={agreement_id}", f"{LABEL_ROLE}={role}"]}
        )
        ids += [c["Id"] for c in found]
    return ids


def wait_running(client: docker.DockerClient, service: str, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        tasks = client.api.tasks(filters={"service": service, "desired-state": "running"})
        if any(task["Status"]["State"] == "running" for task in tasks):
            return
        time.sleep(0.1)
    raise TimeoutError(f"service {service} never ran")


# --- spawn and memory per workspace ------------------------------------------------------


@dataclass
class Backend:
    name: str
    hub: Hub
    agreements: list[str]
    spawn_s: list[float] = field(default_factory=list)
    memory_mib: list[float] = field(default_factory=list)


def _spawn(backend: Backend, agreement_id: str) -> None:
    name = server_name(agreement_id)
    start = time.monotonic()
    backend.hub.api.post(f"/users/alice/servers/{name}").raise_for_status()
    backend.hub.wait_server("alice", name, ready=True)
    backend.spawn_s.append(time.monotonic() - start)


def spawns(client: docker.DockerClient, root: Path) -> tuple[Backend, Backend]:
    """Both hubs at once, spawning in turn; then each workspace's idle memory."""
    run = uuid.uuid4().hex[:4]
    names = {b: [f"AGR-CAP-{run}-{b[0]}{i}" for i in range(SPAWNS)] for b in ("docker", "swarm")}
    stub = ControlPlaneStub(grants={("alice", a) for ids in names.values() for a in ids})
    common = {
        "SANDBOX_HUB_PLATFORM_URL": stub.url,
        "SANDBOX_HUB_PLATFORM_TOKEN": HUB_TOKEN,
        "SANDBOX_HUB_IMAGE": IMAGE,
        "SANDBOX_QUERY_SERVICE_URL": f"http://127.0.0.1:{free_port()}/qs",
    }
    # No worker runs: a workspace's start finds none at once on either backend.
    swarm_env = {**common, "SANDBOX_HUB_BACKEND": "swarm", "SANDBOX_HUB_QUERY_SERVICE_WAIT": "0"}
    backends: list[Backend] = []
    try:
        for name, env in (("docker", common), ("swarm", swarm_env)):
            (root / name).mkdir()
            backends.append(Backend(name, Hub(root / name, env), names[name]))
        for agreement_id in names["docker"]:
            network.provision(client, agreement_id, [])
        for agreement_id in names["swarm"]:
            swarm_network.provision(client, agreement_id, [])
        for backend in backends:
            backend.hub.api.post("/users/alice").raise_for_status()
        for i in range(SPAWNS):
            for backend in backends if i % 2 == 0 else backends[::-1]:
                _spawn(backend, backend.agreements[i])
        time.sleep(20)  # let the servers settle into idleness
        for backend in backends:
            found = containers(client, "workspace", backend.agreements)
            backend.memory_mib = [memory_mib(client, c) for c in found]
    finally:
        for backend in backends:
            backend.hub.stop()
        stub.close()
        for agreement_id in names["docker"]:
            network.teardown(client, agreement_id)
        for agreement_id in names["swarm"]:
            end_on_swarm(client, WorkspaceStop(agreement_id, "terminated"), ended=True)
    docker_backend, swarm_backend = backends
    return docker_backend, swarm_backend


# --- provisioning on Swarm, as agreements accumulate -------------------------------------

#: The worker's service with a process that only answers on its port (its health check)
#: in place of ``sandbox query-worker`` (whose arguments follow, unused): same image,
#: mounts, networks, limits, placement and health check.
STAND_IN_CLI = f'["sh", "-c", "exec python -m http.server {swarm_services.WORKER_PORT}"]'


@dataclass
class Provisioning:
    """Each agreement's provisioning, in order: the call, and until its worker runs."""

    call_s: list[float] = field(default_factory=list)
    until_running_s: list[float] = field(default_factory=list)
    worker_mib: list[float] = field(default_factory=list)
    overlays: int = 0
    doors: int = 0

    def at(self, count: int, times: list[float] | None = None) -> float:
        """Provisioning per agreement at ``count`` agreements: the median over the last
        :data:`WINDOW` agreements up to it."""
        times = self.until_running_s if times is None else times
        return statistics.median(times[max(0, count - WINDOW) : count])


@dataclass
class Platform:
    """The demo platform seeded on SQLite in a folder of its own (workers mount it), with
    workspaces on Swarm, and the users who import and provision agreements."""

    settings: Settings
    factory: sessionmaker[Session]
    provider: User
    operator: User

    @classmethod
    def seeded(cls, root: Path) -> Platform:
        (root / "db").mkdir(parents=True)
        seeded = Settings(
            environment="test",
            data_dir=root / "var",
            database_url=f"sqlite:///{root / 'db' / 'platform.db'}",
        )
        ensure_schema(seeded.db_url, field_keys(seeded))
        factory = make_sessionmaker(platform_engine(seeded))
        with transaction(factory) as session:
            seed_demo(session, seeded, calendar_from_settings(seeded))
            provider = _user(session, load_agreement(DEMO_AGREEMENT).provider)
            operator = _user(session, "operator")
        swarm = {
            "hub_backend": "swarm",
            "hub_api_token": "bench-capacity",
            "hub_api_port": free_port(),
            "query_service_url": "http://query-worker:8000/qs",
        }
        return cls(seeded.model_copy(update=swarm), factory, provider, operator)

    def provision(self, client: docker.DockerClient, agreements: list[str]) -> Provisioning:
        """Import copies of the demo's aggregate agreement, then provision them one after
        another with the platform's own code, each until its worker's task runs."""
        demo = load_agreement(DEMO_AGREEMENT)
        with transaction(self.factory) as session:
            for agreement_id in agreements:
                copy = Agreement.model_validate({**demo.model_dump(), "id": agreement_id})
                import_agreement(session=session, actor=self.provider, agreement=copy)
        measured = Provisioning()
        for i, agreement_id in enumerate(agreements, 1):
            start = time.monotonic()
            with transaction(self.factory) as session:
                provision(
                    session=session,
                    settings=self.settings,
                    actor=self.operator,
                    agreement_id=agreement_id,
                )
            called = time.monotonic()
            wait_running(client, swarm_services.worker_service_name(agreement_id))
            measured.call_s.append(called - start)
            measured.until_running_s.append(time.monotonic() - start)
            if i in COUNTS:
                print(f"  {i} agreements: {measured.at(i):.2f} s per agreement", flush=True)
        names = {n["Name"] for n in client.api.networks()}
        measured.overlays = sum(swarm_network.overlay_name(a) in names for a in agreements)
        measured.doors = sum(swarm_network.door_config_name(a) in names for a in agreements)
        return measured


def _user(session: Session, username: str) -> User:
    return session.scalars(select(User).where(User.username == username)).one()


def real_workers(client: docker.DockerClient, platform: Platform, run: str) -> Provisioning:
    """:data:`REAL_WORKERS` agreements with the real ``sandbox query-worker`` (this
    checkout, in the workspace image): provisioning each, and each worker's idle memory."""
    agreements = [f"AGR-CAP-{run}-w{i}" for i in range(REAL_WORKERS)]
    os.environ.update(
        SANDBOX_HUB_SWARM_WORKER_FROM_HOST="true", SANDBOX_HUB_SWARM_WORKER_IMAGE=IMAGE
    )
    try:
        measured = platform.provision(client, agreements)
        time.sleep(20)  # the workers finish starting and settle into idleness
        found = containers(client, "query-worker", agreements)
        measured.worker_mib = [memory_mib(client, c) for c in found]
    finally:
        end_agreements(client, agreements)
    return measured


def accumulated(client: docker.DockerClient, platform: Platform, run: str) -> Provisioning:
    """Agreements up to the largest count, every one's services kept running: each worker's
    service runs :data:`STAND_IN_CLI` (100 real workers would need more memory than this
    machine has beside its other work; one runs on every node that has room in a cluster)."""
    agreements = [f"AGR-CAP-{run}-{i:03d}" for i in range(1, COUNTS[-1] + 1)]
    os.environ.update(
        SANDBOX_HUB_SWARM_WORKER_FROM_HOST="false",
        SANDBOX_HUB_SWARM_WORKER_IMAGE=IMAGE,
        SANDBOX_HUB_SWARM_WORKER_CLI=STAND_IN_CLI,
    )
    try:
        return platform.provision(client, agreements)
    finally:
        end_agreements(client, agreements)


def end_agreements(client: docker.DockerClient, agreements: list[str]) -> None:
    """Every service first (removed together, waited for together), then each agreement's
    homes, networks and firewall rules, as ending it does."""
    services = [s for a in agreements for s in swarm_services.agreement_services(client, a)]
    swarm_services.remove_services(client, services, limit=600)
    for agreement_id in agreements:
        end_on_swarm(client, WorkspaceStop(agreement_id, "terminated"), ended=True)


# --- agreement networks on one host ------------------------------------------------------

#: Docker's local address pools when daemon.json sets none (libnetwork's defaults).
BUILT_IN_POOLS = [(f"172.{n}.0.0/16", 16) for n in range(17, 32)] + [("192.168.0.0/16", 20)]


def pool_room(pools: list[tuple[str, int]], used: set[ipaddress.IPv4Network]) -> int:
    """How many more networks the pools give: their subnets that overlap no used one."""
    return sum(
        not any(subnet.overlaps(u) for u in used)
        for base, size in pools
        for subnet in ipaddress.ip_network(base).subnets(new_prefix=size)
    )


@dataclass
class LocalNetworks:
    configured: bool
    room: int
    made: int = 0


def local_networks(client: docker.DockerClient, count: int) -> LocalNetworks:
    """The room in Docker's local pools for single-host agreement networks, and, when
    they are configured with room to spare, ``count`` such networks made and removed."""
    pools = [(p["Base"], p["Size"]) for p in client.info().get("DefaultAddressPools") or []]
    found = LocalNetworks(bool(pools), pool_room(pools or BUILT_IN_POOLS, used_subnets(client)))
    if not pools or found.room <= count:
        return found
    run = uuid.uuid4().hex[:4]
    made = [f"AGR-CAP-{run}-n{i}" for i in range(count)]
    try:
        for agreement_id in made:
            network.provision(client, agreement_id, [])
            found.made += 1
    finally:
        for agreement_id in made:
            network.teardown(client, agreement_id)
    return found


# --- audit appends on PostgreSQL ---------------------------------------------------------


def _appender(url: str, count: int, start: multiprocessing.synchronize.Barrier) -> None:
    """``count`` query events, each committed and linked as a query worker's (advance)."""
    factory = make_sessionmaker(make_engine(url))
    start.wait()
    for i in range(count):
        details = {"n": i, "rows": 12, "epsilon": 0.1}
        advance(
            factory,
            "query",
            lambda session, details=details: record(
                session, actor="bench", action="query", object="agreement:AGR-CAP", details=details
            ),
        )


def appends_per_second(url: str, writers: int) -> float:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(writers + 1)
    processes = [
        context.Process(target=_appender, args=(url, APPENDS_EACH, start)) for _ in range(writers)
    ]
    for process in processes:
        process.start()
    start.wait()
    began = time.perf_counter()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - began
    if any(process.exitcode for process in processes):
        raise RuntimeError(f"an appender failed: {[p.exitcode for p in processes]}")
    return writers * APPENDS_EACH / elapsed


def bare_commits_per_second(url: str) -> float:
    """The anchor: one row inserted and committed at a time, nothing else (the disk's
    flush is most of a commit)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_commit (n integer)"))
    began = time.perf_counter()
    for i in range(APPENDS_EACH):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_commit VALUES (:n)"), {"n": i})
    elapsed = time.perf_counter() - began
    engine.dispose()
    return APPENDS_EACH / elapsed


def audit_appends() -> tuple[float, dict[int, float]]:
    """Bare commits per second, and appends per second by each number of writers."""
    from tests.databases import fresh_postgres_database

    rates = {}
    with fresh_postgres_database() as url:
        bare = bare_commits_per_second(url)
    for writers in WRITERS:
        with fresh_postgres_database() as url:
            ensure_schema(url)
            rates[writers] = appends_per_second(url, writers)
    return bare, rates


# --- the report --------------------------------------------------------------------------


def _spread(values: list[float], unit: str) -> str:
    if not values:
        return "none measured"
    return (
        f"median {statistics.median(values):.1f} {unit} "
        f"(min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"
    )


def _verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "NOT MET"


def report(
    client: docker.DockerClient,
    backends: tuple[Backend, Backend],
    real: Provisioning,
    built: Provisioning,
    local: LocalNetworks,
    audit: tuple[float, dict[int, float]],
) -> bool:
    """Print the figures, what they predict, and the targets; whether both are met."""
    docker_b, swarm_b = backends
    spawn_ratio = statistics.median(swarm_b.spawn_s) / statistics.median(docker_b.spawn_s)
    low, high = COUNTS[0], COUNTS[-1]
    provision_ratio = built.at(high) / built.at(low)
    print("\n--- measured on this machine ---")
    for b in backends:
        print(f"spawn, {b.name}: {_spread(b.spawn_s, 's')}")
        print(f"idle workspace, {b.name}: {_spread(b.memory_mib, 'MiB')}")
    print(f"Swarm / DockerSpawner spawn: {spawn_ratio:.2f}x (target <= {TARGET_SPAWN}x: "
          f"{_verdict(spawn_ratio, TARGET_SPAWN)})")  # fmt: skip
    print(
        f"provisioning with the real worker, until it runs: {_spread(real.until_running_s, 's')}"
        f"; the call alone: {_spread(real.call_s, 's')}"
    )
    print(f"idle query worker: {_spread(real.worker_mib, 'MiB')}")
    print("provisioning per agreement as they accumulate, until its worker's task runs (the")
    print("call alone), a bare HTTP server in each worker's service:")
    for count in COUNTS:
        print(
            f"  at {count:>3} agreements: {built.at(count):.2f} s "
            f"({built.at(count, built.call_s):.2f} s)"
        )
    print(f"  at {high} / at {low}: {provision_ratio:.2f}x (target <= {TARGET_PROVISION}x: "
          f"{_verdict(provision_ratio, TARGET_PROVISION)})")  # fmt: skip
    cluster = client.info()["Swarm"]["Cluster"]
    overlay_room = sum(
        2 ** (cluster["SubnetSize"] - ipaddress.ip_network(base).prefixlen)
        for base in cluster["DefaultAddrPool"]
    )
    door_room = 2 ** (24 - DOOR_POOL.prefixlen)
    print(
        f"agreement networks on Swarm: {built.overlays} overlays made, the swarm's pool "
        f"{', '.join(cluster['DefaultAddrPool'])} holds {overlay_room}; {built.doors} doors "
        f"made, {DOOR_POOL} holds {door_room} on each node"
    )
    pools = "configured pools" if local.configured else "Docker's built-in pools"
    made = f"{local.made} made and removed, " if local.made else ""
    print(f"agreement networks on one host ({pools}): {made}room for {local.room} more")
    bare, appends = audit
    print(f"bare commits on PostgreSQL, 1 writer: {bare:,.0f} a second")
    for writers, rate in appends.items():
        print(
            f"audit appends on PostgreSQL, {writers} writer(s): {rate:,.0f} events/s "
            f"({rate / bare:.2f}x bare commits)"
        )

    workspace = statistics.median(swarm_b.memory_mib)
    worker = statistics.median(real.worker_mib)
    host_mib = client.info()["MemTotal"] / MIB
    usable = host_mib - HOST_RESERVE_MIB
    need = RESEARCHERS * workspace + AGREEMENTS * worker
    at_limit = RESEARCHERS * WORKSPACE_LIMIT_MIB + AGREEMENTS * worker
    # t(n) ~ n ** alpha, as from low to high; a measured fall is taken as no growth
    alpha = max(0.0, math.log(provision_ratio) / math.log(high / low))
    total_s = sum(built.at(high) * (n / high) ** alpha for n in range(1, AGREEMENTS + 1))
    rate = appends[max(appends)]
    print(f"\n--- {AGREEMENTS:,} agreements and {RESEARCHERS:,} researchers, from these ---")
    print(
        f"a host like this one ({host_mib / 1024:.1f} GiB, {HOST_RESERVE_MIB} MiB kept for "
        f"itself) holds {int(usable // workspace)} idle workspaces or "
        f"{int(usable // worker)} idle workers"
    )
    print(
        f"every researcher's workspace idle at once and every worker: {need / 1024:,.0f} GiB, "
        f"{math.ceil(need / usable)} such hosts; with every workspace at its "
        f"{WORKSPACE_LIMIT_MIB} MiB limit: {math.ceil(at_limit / usable)}"
    )
    print(
        f"networks: {AGREEMENTS:,} overlays of the {overlay_room} the pool holds; a node "
        f"needs one door per agreement whose workspaces it runs ({door_room} at most)"
    )
    print(
        f"provisioning {AGREEMENTS:,} agreements one after another, each growing as from "
        f"{low} to {high} (n ** {alpha:.2f}): {total_s / 3600:.1f} h, the last "
        f"{built.at(high) * (AGREEMENTS / high) ** alpha:.1f} s"
    )
    print(
        f"audit record: {rate:,.0f} events/s, {rate * 60 / RESEARCHERS:.1f} queries a minute "
        f"for each of {RESEARCHERS:,} researchers at once (one event per query), on one "
        "PostgreSQL"
    )
    return spawn_ratio <= TARGET_SPAWN and provision_ratio <= TARGET_PROVISION


def main() -> int:
    client = docker.from_env()
    if not swarm_network.swarm_active(client):
        print("this engine is not a swarm manager: run .ci/setup.sh (docker swarm init)")
        return 1
    run = uuid.uuid4().hex[:4]
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        root = Path(tmp)
        print(f"spawning {SPAWNS} workspaces on each backend", flush=True)
        backends = spawns(client, root)
        platform = Platform.seeded(root / "platform")
        print(f"provisioning {REAL_WORKERS} agreements with their real workers", flush=True)
        real = real_workers(client, platform, run)
        print(f"provisioning {COUNTS[-1]} agreements on Swarm", flush=True)
        built = accumulated(client, platform, run)
    print("agreement networks on one host", flush=True)
    local = local_networks(client, COUNTS[-1])
    print("audit appends on PostgreSQL", flush=True)
    audit = audit_appends()
    return 0 if report(client, backends, real, built, local, audit) else 1


if __name__ == "__main__":
    sys.exit(main())
