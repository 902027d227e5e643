"""Spawn time through our hub versus a bare DockerSpawner hub, idle memory per
workspace, and how many idle workspaces fit in this machine's memory.

Run as root with Docker and the workspace image: ``.venv/bin/python -m benchmarks.bench_spawn``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import docker

from sandbox.workspaces import network
from sandbox.workspaces.names import LABEL_AGREEMENT, server_name
from tests.workspaces.control_plane_stub import HUB_TOKEN, ControlPlaneStub
from tests.workspaces.hub import Hub, free_port

IMAGE = "sandbox-workspace:latest"
ROUNDS = 3
BARE_CONFIG = f"""
import os
c = get_config()
c.JupyterHub.bind_url = os.environ["SANDBOX_HUB_PUBLIC_URL"]
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_port = int(os.environ["SANDBOX_HUB_API_PORT"])
c.ConfigurableHTTPProxy.api_url = os.environ["SANDBOX_HUB_PROXY_API_URL"]
c.JupyterHub.hub_connect_ip = "172.17.0.1"
c.JupyterHub.allow_named_servers = True
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = "{IMAGE}"
c.DockerSpawner.pull_policy = "never"
c.DockerSpawner.remove = True
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
c.JupyterHub.authenticator_class = "null"  # API-only: no login needed
c.Authenticator.allow_all = True
c.JupyterHub.services = [{{"name": "bench", "api_token": os.environ["SANDBOX_HUB_API_TOKEN"]}}]
c.JupyterHub.load_roles = [{{"name": "bench", "scopes": ["admin:users", "servers"],
                            "services": ["bench"]}}]
"""


def _spawn_times(hub: Hub, names: list[str]) -> list[float]:
    hub.api.post("/users/alice").raise_for_status()
    times = []
    for name in names:
        start = time.monotonic()
        response = hub.api.post(f"/users/alice/servers/{name}")
        response.raise_for_status()
        hub.wait_server("alice", name, ready=True)
        times.append(time.monotonic() - start)
    return times


def _idle_memory_mib(client: docker.DockerClient, label: str | None) -> list[float]:
    filters = {"label": label} if label else {"name": "jupyter-alice"}
    time.sleep(20)  # let the servers settle into idleness
    containers = client.containers.list(filters=filters)
    return [c.stats(stream=False)["memory_stats"]["usage"] / 2**20 for c in containers]


def main() -> None:
    client = docker.from_env()
    agreements = [f"AGR-BENCH-{i}" for i in range(ROUNDS)]
    stub = ControlPlaneStub(grants={("alice", a) for a in agreements})
    with tempfile.TemporaryDirectory() as ours_dir, tempfile.TemporaryDirectory() as bare_dir:
        ours = Hub(
            Path(ours_dir),
            {
                "SANDBOX_HUB_PLATFORM_URL": stub.url,
                "SANDBOX_HUB_PLATFORM_TOKEN": HUB_TOKEN,
                "SANDBOX_HUB_IMAGE": IMAGE,
                "SANDBOX_QUERY_SERVICE_URL": f"http://127.0.0.1:{free_port()}/qs",
            },
        )
        try:
            our_times = _spawn_times(ours, [server_name(a) for a in agreements])
            idle = [
                m for a in agreements for m in _idle_memory_mib(client, f"{LABEL_AGREEMENT}={a}")
            ]
        finally:
            ours.stop()
            for agreement in agreements:
                network.teardown(client, agreement)
        config = Path(bare_dir) / "bare_config.py"
        config.write_text(BARE_CONFIG)
        bare = Hub(Path(bare_dir), {}, config=config)
        try:
            bare_times = _spawn_times(bare, [f"bench{i}" for i in range(ROUNDS)])
            bare_idle = _idle_memory_mib(client, None)
        finally:
            for i in range(ROUNDS):
                bare.api.delete(f"/users/alice/servers/bench{i}")
            for i in range(ROUNDS):
                bare.wait_server("alice", f"bench{i}", ready=False)
            bare.stop()
    stub.close()
    total_mib = client.info()["MemTotal"] / 2**20
    per = statistics.mean(idle)
    print(f"spawn, our hub:   median {statistics.median(our_times):.1f} s  {our_times}")
    print(f"spawn, bare hub:  median {statistics.median(bare_times):.1f} s  {bare_times}")
    print(
        f"idle memory per workspace: ours {per:.0f} MiB, bare {statistics.mean(bare_idle):.0f} MiB"
    )
    print(
        f"idle workspaces in {total_mib / 1024:.1f} GiB (leaving 2 GiB to the host): "
        f"~{int((total_mib - 2048) / per)} by measured use; "
        f"{int((total_mib - 2048) / 2048)} if every 2 GiB limit were reached"
    )


if __name__ == "__main__":
    main()
