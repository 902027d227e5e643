"""Inside a hardened workspace container: the notebook client reaches the agreement's real
query worker on the network's gateway over TLS, verifying it against the platform's CA,
which the hub's host config mounts read-only; without that CA the handshake fails."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sandbox.tls import development
from sandbox.workspaces import hardening, network
from sandbox.workspaces.names import LABEL_AGREEMENT
from tests.query_service.conftest import AGGREGATE, World
from tests.tls.test_query_worker_tls import SANDBOX, _worker_env
from tests.waiting import eventually
from tests.workspaces.conftest import start_workspace
from tests.workspaces.hub import free_port

# These tests change the host's firewall chains, which are one per machine: they run on one
# test worker, one after another (make test uses --dist loadgroup).
pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("host-firewall")]

INSIDE = """
import json, os
from query_guard.client import connect
out = {}
with connect(progress=None) as db:  # SANDBOX_QUERY_URL, _TOKEN and _CA, as the hub sets them
    out["agreement"] = db.scope()["id"]
ca = os.environ.pop("SANDBOX_QUERY_CA")
try:
    with connect(progress=None) as db:
        db.scope()
    out["without_ca"] = "answered"
except Exception as exc:
    out["without_ca"] = str(exc)
try:
    open(ca, "a").close()
    out["ca_writable"] = True
except OSError:
    out["ca_writable"] = False
print(json.dumps(out))
"""


def test_the_workspace_verifies_its_worker_on_the_gateway_against_the_mounted_ca(
    docker_client, workspace_image: str, world: World, tmp_path: Path
) -> None:
    port = free_port()
    net = network.provision(docker_client, AGGREGATE, [port])
    worker = None
    try:
        issued = development.server_certificate(tmp_path / "tls", "worker", [net.gateway])
        command = [SANDBOX, "query-worker", "--agreement", AGGREGATE]
        command += ["--host", net.gateway, "--port", str(port)]
        command += ["--tls-cert", str(issued.cert), "--tls-key", str(issued.key)]
        worker = subprocess.Popen(command, env=_worker_env(world), stdout=subprocess.DEVNULL)
        url = f"https://{net.gateway}:{port}/qs"
        container = start_workspace(
            docker_client, workspace_image, net, "alice", ["sleep", "infinity"],
            ca_file=str(issued.ca.resolve()),
        )  # fmt: skip
        mounts = docker_client.api.inspect_container(container)["Mounts"]
        [ca] = [m for m in mounts if m["Destination"] == hardening.CA_PATH]
        assert ca["Type"] == "bind" and ca["RW"] is False
        assert ca["Source"] == str(issued.ca.resolve())

        environment = {
            "SANDBOX_QUERY_URL": url,
            "SANDBOX_TOKEN": world.tokens[AGGREGATE],
            "SANDBOX_QUERY_CA": hardening.CA_PATH,
        }

        def inside() -> dict:
            run = docker_client.api.exec_create(
                container, ["python", "-c", INSIDE], environment=environment
            )
            output = docker_client.api.exec_start(run["Id"]).decode()
            assert docker_client.api.exec_inspect(run["Id"])["ExitCode"] == 0, output
            return json.loads(output.strip().splitlines()[-1])

        eventually(lambda: worker.poll() is None and _answers(inside), "the worker", limit=120)
        seen = inside()
        assert seen["agreement"] == AGGREGATE
        assert "CERTIFICATE_VERIFY_FAILED" in seen["without_ca"]
        assert seen["ca_writable"] is False
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        label = f"{LABEL_AGREEMENT}={AGGREGATE}"
        for found in docker_client.containers.list(filters={"label": label}):
            found.remove(force=True)
        network.teardown(docker_client, AGGREGATE)


def _answers(inside) -> bool:  # type: ignore[no-untyped-def]
    try:
        return inside()["agreement"] == AGGREGATE
    except AssertionError:  # the worker is still starting: the client's connection failed
        return False
