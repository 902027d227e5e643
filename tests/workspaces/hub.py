"""Start a real JupyterHub (with configurable-http-proxy and our DockerSpawner config)
as a subprocess, for tests and the spawn benchmark."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "hub_config" / "jupyterhub_config.py"
CONTROL_PLANE_TOKEN = "platform-to-hub-test-token"


#: The kernel's ephemeral ports: outgoing connections take theirs from this range.
EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A loopback port free now, chosen below the ephemeral range. A port the kernel picks
    (bind to 0) is one an outgoing connection may take before the server handed it binds
    it, and under parallel tests thousands are made: `sandbox serve` then failed to start,
    or a stopped server's port answered again."""
    lowest = int(EPHEMERAL.read_text().split()[0]) if EPHEMERAL.exists() else 32768
    while True:
        port = random.randrange(10000, max(lowest, 20000))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class Hub:
    """A running hub; ``api`` is an HTTP client holding the given API token. With ``ca``,
    the hub serves HTTPS (``SANDBOX_HUB_SSL_*`` in ``env``) and ``api`` verifies it.
    ``port``: the public one (a hub started again where another was), else a free one."""

    def __init__(
        self,
        state_dir: Path,
        env: dict[str, str],
        config: Path = CONFIG,
        token: str = CONTROL_PLANE_TOKEN,
        ca: Path | None = None,
        port: int | None = None,
    ):
        if shutil.which("configurable-http-proxy") is None:
            raise RuntimeError("configurable-http-proxy is not installed (.ci/setup.sh)")
        self.port = port or free_port()
        self.url = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "SANDBOX_HUB_PUBLIC_URL": self.url,
            "SANDBOX_HUB_API_PORT": str(free_port()),
            "SANDBOX_HUB_PROXY_API_URL": f"http://127.0.0.1:{free_port()}",
            "SANDBOX_HUB_STATE_DIR": str(state_dir),
            "SANDBOX_HUB_API_TOKEN": token,
            **env,
        }
        self.log_path = state_dir / "hub.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=state_dir,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.api = httpx.Client(
            base_url=f"{self.url}/hub/api",
            headers={"Authorization": f"token {token}"},
            timeout=30,
            verify=ssl.create_default_context(cafile=str(ca)) if ca else True,
        )
        self._wait_ready(state_dir)

    def _wait_ready(self, state_dir: Path) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((state_dir / "hub.log").read_text()[-3000:])
            try:
                if self.api.get("/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError("hub did not start: " + (state_dir / "hub.log").read_text()[-3000:])

    def wait_server(self, user: str, name: str, *, ready: bool, limit: float = 180) -> dict:
        """Poll the hub until the named server is ready (or gone); return its model."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            server = self.api.get(f"/users/{user}").json()["servers"].get(name)
            if (server is not None and server["ready"]) == ready and (ready or server is None):
                return server or {}
            time.sleep(0.3)
        raise TimeoutError(f"server {user}/{name} never became ready={ready}")

    def log_tail(self) -> str:
        """The end of the hub's log, for assertion messages."""
        return self.log_path.read_text()[-4000:]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.api.close()
        self.log.close()
