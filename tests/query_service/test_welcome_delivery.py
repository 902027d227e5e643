"""How a new workspace receives its welcome notebook (issue 13, item 2): the hub starts every
container through ``query_guard.workspace_start``, and in a real hardened container on the
agreement's confined network the start fetches the notebook from the platform's query
service into the home volume before the server runs (Docker; CI runs it)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from traitlets.config.loader import PyFileConfigLoader

from sandbox.apps.platform import create_app
from sandbox.settings import get_settings
from sandbox.workspaces import hardening, network
from sandbox.workspaces.limits import shown_limits
from tests.query_service.conftest import AGGREGATE, World
from tests.resources import require_docker, require_workspace_image

START = ["python", "-m", "query_guard.workspace_start"]


def _hub_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    import hub_config

    monkeypatch.setenv("SANDBOX_HUB_STATE_DIR", str(tmp_path / "hub"))
    get_settings.cache_clear()
    try:
        path = str(Path(hub_config.__file__).parent)
        return PyFileConfigLoader("jupyterhub_config.py", path=path).load_config()
    finally:
        get_settings.cache_clear()


def test_the_hub_starts_workspaces_through_the_start_and_applies_the_limits_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SANDBOX_HUB_MEMORY", "3g")
    monkeypatch.setenv("SANDBOX_HUB_CPUS", "1.5")
    monkeypatch.setenv("SANDBOX_HUB_IDLE_TIMEOUT", "1800")
    config = _hub_config(monkeypatch, tmp_path)
    assert config.DockerSpawner.cmd == [*START, "jupyterhub-singleuser"]
    applied = config.Spawner.pre_spawn_hook.keywords["policy"].limits
    shown = shown_limits()
    assert (applied.memory, applied.cpus, applied.pids) == (shown.memory, shown.cpus, shown.pids)
    assert (shown.memory, shown.cpus, shown.idle_minutes) == ("3g", 1.5, 30)
    culler = next(s for s in config.JupyterHub.services if s["name"] == "idle-culler")
    assert "--timeout=1800" in culler["command"]


def _serve_on(app: Any, host: str) -> Iterator[int]:
    """``app`` on a real uvicorn bound to ``host`` (the agreement network's gateway)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _read_welcome(client: Any, container_id: str) -> str:
    code = (
        "import json; "
        "print(json.dumps(json.load(open('/home/jovyan/welcome.ipynb'))['metadata']['sandbox']))"
    )
    run = client.api.exec_create(container_id, ["python", "-c", code])
    output = client.api.exec_start(run["Id"]).decode()
    return output if client.api.exec_inspect(run["Id"])["ExitCode"] == 0 else ""


@pytest.fixture
def docker_engine() -> Any:
    """Asked for before the platform is built, so a machine without Docker skips at once."""
    return require_docker()


@pytest.mark.docker
@pytest.mark.xdist_group("host-firewall")  # both databases' runs use one agreement network
def test_a_new_workspace_container_receives_the_welcome_notebook(
    docker_engine: Any, world: World
) -> None:
    client = docker_engine
    image = require_workspace_image(client)
    net = network.provision(client, AGGREGATE, [])  # its gateway is where the service listens
    served = _serve_on(create_app(world.settings), net.gateway)
    try:
        port = next(served)
        net = network.provision(client, AGGREGATE, [port])  # the firewall lets that port in
        home = network.ensure_home_volume(client, "alice", AGGREGATE)
        host_config = client.api.create_host_config(
            **hardening.host_config(
                hardening.WorkspaceLimits(), network=net.name, home_volume=home, dns=net.gateway
            )
        )
        created = client.api.create_container(
            image,
            [*START, "sleep", "300"],  # the hub's command, with a stand-in for the server
            host_config=host_config,
            environment={
                "SANDBOX_QUERY_URL": f"http://{net.gateway}:{port}/qs",
                "SANDBOX_TOKEN": world.tokens[AGGREGATE],
            },
            **hardening.create_kwargs(agreement_id=AGGREGATE, researcher="alice"),
        )
        client.api.start(created["Id"])
        network.drop_default_route(client.api.inspect_container(created["Id"])["State"]["Pid"])
        found = ""
        for _ in range(120):  # the start fetches once; wait for it, however slow the host
            found = _read_welcome(client, created["Id"])
            if found:
                break
            time.sleep(0.5)
        logs = client.api.logs(created["Id"]).decode()
        assert found, logs
        assert json.loads(found) == {"agreement": AGGREGATE, "mode": "aggregate"}
    finally:
        served.close()
        network.teardown(client, AGGREGATE)
