"""SIGTERM or SIGINT stops ``sandbox run`` and ``sandbox serve`` cleanly, as real processes:
the command unwinds (the duties timer finishes, the workspaces stop) and exits with 128 +
the signal's number, and afterwards no process of it remains — none below it, and none
anywhere that carries its data directory. With Docker and iptables (CI, as root) the run
starts JupyterHub, its proxy and culler and the demo agreements' query workers: all of
them end, and no ``sbx-`` firewall chain is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sandbox.cli import processes
from sandbox.cli.processes import Proc
from tests.waiting import eventually
from tests.workspaces.conftest import docker_client, workspace_image  # noqa: F401
from tests.workspaces.hub import free_port

# These tests start hubs and change the host's firewall chains, which are one per machine:
# they run on one test worker, one after another (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("host-firewall")

SANDBOX = str(Path(sys.executable).with_name("sandbox"))


def _environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SANDBOX_DATA_DIR": str(data_dir),
        "SANDBOX_ENVIRONMENT": "development",
        **extra,
    }
    env.pop("SANDBOX_DATABASE_URL", None)
    return env


def _carrying(data_dir: Path) -> list[int]:
    """Processes anywhere whose environment names ``data_dir`` (what ``sandbox run`` and
    everything it started carry), whoever their parent is now."""
    markers = {f"SANDBOX_DATA_DIR={path}".encode() for path in (data_dir, data_dir.resolve())}
    found = []
    for proc in processes.processes():
        try:
            environ = (processes.PROC / str(proc.pid) / "environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if markers & set(environ.split(b"\0")) and processes.alive(proc):
            found.append(proc.pid)
    return found


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[list[Proc], str]:
    """Send ``signum``; the processes below the command just before, and its output."""
    tree = processes.descendants(proc.pid)
    proc.send_signal(signum)
    try:
        output = proc.communicate(timeout=180)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"no stop within 180 s:\n{proc.communicate()[0]}") from None
    return tree, output


@pytest.mark.parametrize(
    ("command", "signum"),
    [("run", signal.SIGTERM), ("run", signal.SIGINT), ("serve", signal.SIGTERM)],
)
def test_a_stop_signal_ends_the_command_and_everything_it_started(
    tmp_path: Path, command: str, signum: int
) -> None:
    port = free_port()
    data_dir = tmp_path / "var"
    env = _environment(
        data_dir,
        SANDBOX_PORT=str(port),
        SANDBOX_HUB_START="none",  # no hub here
        SANDBOX_DUTIES_INTERVAL="3600",
    )
    proc = subprocess.Popen(
        [SANDBOX, command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    eventually(
        lambda: httpx.get(f"{base}/api/catalog").status_code == 200, "the platform", proc=proc
    )

    tree, output = _stop(proc, signum)

    assert proc.returncode == 128 + signum, output
    name = signal.Signals(signum).name
    assert f"stopped cleanly on {name}" in output
    assert not [p for p in tree if processes.alive(p)]
    assert _carrying(data_dir) == []
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/api/catalog", timeout=2)


def test_a_tree_whose_parent_died_first_is_still_ended(tmp_path: Path) -> None:
    """The hub's proxy runs in a session of its own and outlives a hub that is killed:
    the stop ends what it saw below the hub all the same."""
    grandchild = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
        "start_new_session=True); time.sleep(600)"
    )
    parent = subprocess.Popen([sys.executable, "-c", grandchild])
    try:
        deadline = time.monotonic() + 30
        while not (tree := processes.descendants(parent.pid)):
            assert time.monotonic() < deadline, "the grandchild never started"
            time.sleep(0.05)
        parent.kill()
        parent.wait()
        assert all(processes.alive(p) for p in tree)  # orphaned, still running
        assert processes.end(tree, grace=10) == []  # ended by SIGTERM, no SIGKILL needed
        assert not any(processes.alive(p) for p in tree)
    finally:
        if parent.poll() is None:
            parent.kill()


def _chains(tool: str) -> list[str]:
    listed = subprocess.run([tool, "-w", "-S"], capture_output=True, text=True, check=True)
    return [line.split()[1] for line in listed.stdout.splitlines() if line.startswith("-N ")]


def _cmdline(proc: Proc) -> str:
    try:
        raw = (processes.PROC / str(proc.pid) / "cmdline").read_bytes()
    except FileNotFoundError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


@pytest.mark.docker
def test_the_hub_proxy_culler_workers_and_firewall_chain_go_with_sandbox_run(
    docker_client,  # noqa: F811
    workspace_image: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from sqlalchemy import create_engine, text

    from sandbox.workspaces import network

    if shutil.which("configurable-http-proxy") is None:
        pytest.fail("configurable-http-proxy is not installed: the hub cannot start")
    data_dir = tmp_path / "var"
    port, hub_port = free_port(), free_port()
    env = _environment(
        data_dir,
        SANDBOX_PORT=str(port),
        SANDBOX_HUB_IMAGE=workspace_image,
        SANDBOX_HUB_START="docker",
        SANDBOX_HUB_URL=f"http://127.0.0.1:{hub_port}",
        SANDBOX_HUB_PUBLIC_URL=f"http://127.0.0.1:{hub_port}",
        SANDBOX_HUB_API_PORT=str(free_port()),
        SANDBOX_HUB_PROXY_API_URL=f"http://127.0.0.1:{free_port()}",
        SANDBOX_QUERY_SERVICE_URL=f"http://127.0.0.1:{free_port()}/qs",
    )
    proc = subprocess.Popen(
        [SANDBOX, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        hub = f"http://127.0.0.1:{hub_port}/hub/api/"
        eventually(lambda: httpx.get(hub).status_code == 200, "the hub", proc=proc)
        parts = ("jupyterhub", "configurable-http-proxy", "jupyterhub_idle_culler", "query-worker")

        def started() -> bool:
            below = " ".join(_cmdline(p) for p in processes.descendants(proc.pid))
            return all(part in below for part in parts)

        eventually(started, "the hub's proxy and culler and the demo's query workers", proc=proc)
        assert "sbx-hub-api" in _chains("iptables")

        tree, output = _stop(proc, signal.SIGTERM)

        assert proc.returncode == 128 + signal.SIGTERM, output
        assert "workspaces:  stopped" in output
        assert not [_cmdline(p) for p in tree if processes.alive(p)]
        assert _carrying(data_dir) == []
        for tool in ("iptables", "ip6tables"):
            assert not [c for c in _chains(tool) if c.startswith("sbx-")], tool
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        engine = create_engine(f"sqlite:///{data_dir / 'sandbox.db'}")
        with engine.connect() as conn:
            provisioned = conn.execute(text("SELECT agreement_id FROM workspaces")).scalars()
            for agreement_id in list(provisioned):
                network.teardown(docker_client, agreement_id)  # the demo's networks
        engine.dispose()
