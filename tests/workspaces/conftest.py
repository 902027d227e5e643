"""Workspace fixtures: a real agreement network with its firewall, and hardened
containers started with exactly the settings the hub uses."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox.workspaces import hardening, network
from tests.resources import require_docker, require_workspace_image


@pytest.fixture(scope="session")
def docker_client():
    return require_docker()


@pytest.fixture(scope="session")
def workspace_image(docker_client) -> str:
    return require_workspace_image(docker_client)


def new_agreement_id() -> str:
    return f"AGR-TEST-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def agreement(docker_client) -> Iterator[str]:
    agreement_id = new_agreement_id()
    yield agreement_id
    network.teardown(docker_client, agreement_id)


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"query-service-stand-in"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def serve_http(host: str) -> ThreadingHTTPServer:
    """A tiny real HTTP server on ``host`` (port chosen by the kernel), in a thread."""
    server = ThreadingHTTPServer((host, 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Listener:
    """A TCP listener that records whether anyone connected."""

    def __init__(self, host: str):
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def start_workspace(
    client,
    image: str,
    net: network.AgreementNetwork,
    researcher: str,
    command: list[str],
    ca_file: str | None = None,
) -> str:
    """Start a container the way the hub does (same dicts, same route removal); return its id.
    ``ca_file``: the platform's CA on the host, mounted read-only as the hub mounts it."""
    home = network.ensure_home_volume(client, researcher, net.agreement_id)
    project = network.ensure_project_volume(client, net.agreement_id)
    host_config = client.api.create_host_config(
        **hardening.host_config(
            hardening.WorkspaceLimits(),
            network=net.name,
            home_volume=home,
            dns=net.gateway,
            project_volume=project,
            ca_file=ca_file,
        )
    )
    created = client.api.create_container(
        image,
        command,
        host_config=host_config,
        environment=hardening.SERVER_ENVIRONMENT,
        **hardening.create_kwargs(agreement_id=net.agreement_id, researcher=researcher),
    )
    client.api.start(created["Id"])
    network.drop_default_route(client.api.inspect_container(created["Id"])["State"]["Pid"])
    return created["Id"]


def run_python(
    client, container_id: str, code: str, environment: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run Python inside the container as its user, with ``environment`` added to its own;
    return (exit code, output)."""
    result = client.api.exec_create(container_id, ["python", "-c", code], environment=environment)
    output = client.api.exec_start(result["Id"]).decode()
    return client.api.exec_inspect(result["Id"])["ExitCode"], output


PROBE = """
import json, socket, sys
results = {}
for host, port in json.loads(sys.argv[1] if len(sys.argv) > 1 else %r):
    try:
        socket.create_connection((host, port), timeout=30).close()
        results[f"{host}:{port}"] = "connected"
    except OSError as exc:
        results[f"{host}:{port}"] = type(exc).__name__
print(json.dumps(results))
"""


def probe(client, container_id: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    """Try a TCP connection to each target from inside; name each outcome."""
    code, out = run_python(client, container_id, PROBE % json.dumps(targets))
    assert code == 0, out
    return json.loads(out.strip().splitlines()[-1])
