"""The development workspace, without Docker (issue 13, item 1): ``sandbox run`` starts the
hub with local JupyterLab processes; alice spawns her demo agreement's workspace through
the hub's REST API, and her kernel's notebook client, holding the token the platform
handed the workspace, gets an answer from the agreement's query worker. Her pages say the
workspace is not isolated and link only to a hub that answers; production refuses the
development spawner, naming the rule.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub_config.dev_workspace import DevelopmentWorkspaceRefused, refuse_in_production
from sandbox.demo.seed import DEMO_PASSWORD
from sandbox.workspaces.availability import NOT_ISOLATED
from sandbox.workspaces.names import server_name
from tests.e2e.jupyter import Kernel, api_token, log_in
from tests.waiting import eventually
from tests.workspaces.hub import CONFIG, free_port

# These tests start hubs and change the host's firewall chains, which are one per machine:
# they run on one test worker, one after another (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("host-firewall")

SANDBOX = str(Path(sys.executable).with_name("sandbox"))
AGREEMENT = "AGR-2026-0001"  # the demo's aggregate agreement on outpatient_visits, alice's
QUERY = """
from query_guard.client import connect
df = connect().sql("SELECT district, COUNT(*) AS n FROM outpatient_visits GROUP BY district")
print("rows", len(df), "columns", sorted(df.columns))
"""


def _environment(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {**os.environ, "SANDBOX_DATA_DIR": str(data_dir), **settings}
    env.pop("SANDBOX_DATABASE_URL", None)
    return env


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``sandbox run`` with development workspaces, on free loopback ports."""
    if shutil.which("configurable-http-proxy") is None:
        pytest.fail("configurable-http-proxy is not installed: the hub cannot start")
    hub_url = f"http://127.0.0.1:{free_port()}"
    urls = {
        "platform": f"http://127.0.0.1:{free_port()}",
        "hub": hub_url,
    }
    env = _environment(
        tmp_path_factory.mktemp("dev") / "var",
        SANDBOX_ENVIRONMENT="development",
        SANDBOX_PORT=urls["platform"].rsplit(":", 1)[1],
        SANDBOX_HUB_START="development",
        SANDBOX_HUB_URL=hub_url,
        SANDBOX_HUB_API_PORT=str(free_port()),
        SANDBOX_HUB_PROXY_API_URL=f"http://127.0.0.1:{free_port()}",
        SANDBOX_QUERY_SERVICE_URL=f"http://127.0.0.1:{free_port()}/qs",
        SANDBOX_DUTIES_INTERVAL="0",
    )
    proc = subprocess.Popen(
        [SANDBOX, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        eventually(
            lambda: httpx.get(f"{hub_url}/hub/api/").status_code == 200, "hub", limit=180, proc=proc
        )
        eventually(
            lambda: httpx.get(f"{urls['platform']}/api/catalog").status_code == 200,
            "platform",
            limit=180,
            proc=proc,
        )
        yield urls
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output = proc.communicate(timeout=120)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
        assert "development workspaces: local JupyterLab processes, NOT isolated" in output


def test_a_dev_workspace_spawns_and_its_kernel_queries_through_the_query_worker(
    run: dict[str, str],
) -> None:
    name = server_name(AGREEMENT)
    session = log_in(run["hub"], "alice", DEMO_PASSWORD)
    token = api_token(session, "alice")
    hub = httpx.Client(
        base_url=f"{run['hub']}/hub/api", headers={"Authorization": f"token {token}"}, timeout=60
    )
    assert hub.post(f"/users/alice/servers/{name}").status_code in (201, 202)
    deadline = time.monotonic() + 180
    while not (hub.get("/users/alice").json()["servers"].get(name) or {}).get("ready"):
        assert time.monotonic() < deadline, "the development workspace never became ready"
        time.sleep(0.5)
    kernel = Kernel(f"{run['hub']}/user/alice/{name}", token)
    try:
        ran = kernel.run(QUERY)
    finally:
        kernel.close()
    assert ran.error is None, ran.error
    assert re.search(r"rows [1-9] columns \['district', 'n'\]", ran.stdout), ran.stdout
    hub.delete(f"/users/alice/servers/{name}", params={"remove": "true"})


def test_the_researcher_page_says_not_isolated_and_links_to_the_running_hub(
    run: dict[str, str],
) -> None:
    with httpx.Client(base_url=run["platform"], timeout=30) as client:
        form = client.get("/signin")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf, "the sign-in form has no CSRF field"
        signed = client.post(
            "/signin",
            data={"username": "alice", "password": DEMO_PASSWORD, "csrf_token": csrf.group(1)},
        )
        assert signed.status_code in (200, 303), signed.text[:300]
        page = client.get("/researcher")
    assert page.status_code == 200
    assert NOT_ISOLATED[0] in page.text
    links = re.findall(r'href="([^"]+)"[^>]*class="workspace-link"', page.text)
    assert links == [f"{run['hub']}/hub/spawn/alice/{server_name(AGREEMENT)}"]
    assert httpx.get(f"{run['hub']}/hub/api/").status_code == 200  # not a dead link


def test_production_refuses_the_development_spawner(tmp_path: Path) -> None:
    with pytest.raises(DevelopmentWorkspaceRefused) as refused:
        refuse_in_production("production")
    assert "[dev-workspace-production]" in str(refused.value)
    refuse_in_production("development")  # allowed
    env = _environment(
        tmp_path / "var",
        SANDBOX_ENVIRONMENT="production",
        SANDBOX_SECRET_KEY="a-production-secret-for-this-test-only-0123456789",
        SANDBOX_HUB_SPAWNER="development",
        SANDBOX_HUB_STATE_DIR=str(tmp_path / "hub"),
        SANDBOX_HUB_PUBLIC_URL=f"http://127.0.0.1:{free_port()}",
        SANDBOX_HUB_API_PORT=str(free_port()),
    )
    hub = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert hub.returncode != 0
    assert "refused when SANDBOX_ENVIRONMENT=production" in hub.stdout + hub.stderr
