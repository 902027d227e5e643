"""The researcher's whole path in Debian's chromium, on what `make run` starts (issue 13,
item 5): ``sandbox run`` with its demo accounts; alice signs in and applies, the provider
approves, the operator provisions, alice opens her workspace from the platform's link and
sees the welcome notebook in JupyterLab, its cells run in her workspace's kernel and submit
a table and a figure (and a file lands in the agreement's shared project folder), the
provider approves both, alice downloads each release bundle and
``sandbox release verify`` accepts it. On Docker workspaces (DockerSpawner, and
``SANDBOX_HUB_BACKEND=swarm`` on a real single-node swarm), and on the development
workspace (no Docker).

Everything listens on loopback, or on the agreement network's gateway the test's
``sandbox run`` creates; the assertions are on pages, files and command output, never on
timing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from sandbox.demo.seed import DEMO_PASSWORD
from sandbox.workspaces.availability import NOT_ISOLATED
from sandbox.workspaces.names import server_name
from sandbox.workspaces.welcome import SUBMIT_TAG
from tests.e2e.jupyter import Kernel
from tests.second_factor import browser_second_step, demo_code
from tests.swarm.conftest import swarm_client  # noqa: F401
from tests.waiting import eventually
from tests.web.conftest import screenshot
from tests.workspaces.hub import free_port

# `sandbox run` starts a hub and (with Docker) changes the host's firewall chains, which
# are one per machine: these run on one test worker, one after another.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("host-firewall")]

SANDBOX = str(Path(sys.executable).with_name("sandbox"))
PROVIDER = "wuxi-health-commission"  # the demo provider of outpatient_visits
COLUMNS = ("visit_date", "district", "department", "cost")
#: Seconds for a workspace to start and JupyterLab to load (a cold container on a busy CI).
WORKSPACE_MS = 240_000


@dataclass
class Run:
    """A running ``sandbox run``: its addresses, data directory and log."""

    platform: str
    hub: str
    data_dir: Path
    log: Path
    proc: subprocess.Popen[str]

    def env(self) -> dict[str, str]:
        """The environment a command of this platform runs with (its keys, its database)."""
        env = {**os.environ, "SANDBOX_DATA_DIR": str(self.data_dir)}
        env.pop("SANDBOX_DATABASE_URL", None)
        return env


def sandbox_run(tmp_path: Path, kind: str, **extra: str) -> Run:
    """Start ``sandbox run`` on free loopback ports with workspaces of ``kind``."""
    platform, hub = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    data_dir = tmp_path / "var"
    env = {
        **os.environ,
        "SANDBOX_DATA_DIR": str(data_dir),
        "SANDBOX_ENVIRONMENT": "development",
        "SANDBOX_PORT": platform.rsplit(":", 1)[1],
        "SANDBOX_HUB_START": kind,
        "SANDBOX_HUB_URL": hub,
        "SANDBOX_HUB_API_PORT": str(free_port()),
        "SANDBOX_HUB_PROXY_API_URL": f"http://127.0.0.1:{free_port()}",
        "SANDBOX_QUERY_SERVICE_URL": f"http://127.0.0.1:{free_port()}/qs",
        "SANDBOX_DUTIES_INTERVAL": "0",
        **extra,
    }
    env.pop("SANDBOX_DATABASE_URL", None)
    log = tmp_path / "sandbox-run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [SANDBOX, "run"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    run = Run(platform, hub, data_dir, log, proc)
    try:
        answers = (("the hub", f"{hub}/hub/api/"), ("the platform", f"{platform}/api/catalog"))
        for what, url in answers:
            eventually(
                lambda url=url: httpx.get(url).status_code == 200, what, limit=240, proc=proc
            )
    except BaseException:
        stop(run)
        raise
    return run


def stop(run: Run) -> str:
    """SIGTERM, as Ctrl-C would; return what it printed."""
    run.proc.send_signal(signal.SIGTERM)
    try:
        run.proc.wait(120)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        run.proc.wait()
    return run.log.read_text()


# --- The pages ---------------------------------------------------------------------------


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/signin")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form.narrow button[type=submit]")
    browser_second_step(page, lambda: demo_code(base, username))  # the demo staff's secret
    page.wait_for_url(lambda url: "/signin" not in url)


def sign_out(page) -> None:  # type: ignore[no-untyped-def]
    page.click("header form[action='/signout'] button")
    page.wait_for_url("**/catalogue")


def apply(page, base: str, title: str) -> None:  # type: ignore[no-untyped-def]
    """alice applies for outpatient visits, to export tables and figures."""
    sign_in(page, base, "alice")
    page.goto(f"{base}/researcher/applications/new")
    page.fill("input[name=title]", title)
    page.fill("textarea[name=reason]", "公共卫生研究")
    page.fill("textarea[name=scenario]", "按区县汇总的门诊统计")
    page.fill("textarea[name=purpose]", "比较各区县门诊人次和费用")
    page.fill("input[name=usage_from]", date.today().isoformat())
    page.fill("input[name=usage_until]", (date.today() + timedelta(days=180)).isoformat())
    for form in ("table", "figure"):
        page.check(f"input[name=output_forms][value={form}]")
    page.fill("textarea[name=conditions_evidence]", "安全认证证书 42 号")
    for column in COLUMNS:
        page.check(f"input[name=columns][value='outpatient_visits.{column}']")
    page.check("input[name=commitment_signed]")
    page.click("button[name=action][value=submit]")
    page.wait_for_selector("#deadline")
    sign_out(page)


def approve(page, base: str, title: str, agreement_id: str) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, base, PROVIDER)
    page.click(f"#application-queue a:has-text('{title}')")
    page.fill("#approve input[name=agreement_id]", agreement_id)
    page.click("#approve button.primary")
    page.wait_for_selector("#agreement-yaml")
    text = page.inner_text("#agreement-yaml")
    assert f"id: {agreement_id}" in text and "figure" in text, text
    sign_out(page)


def provision(page, base: str, agreement_id: str) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, base, "operator")
    row = page.locator(f"#agreement-{agreement_id}")
    row.locator("button:has-text('部署')").click()
    page.wait_for_selector(f"#agreement-{agreement_id} .ws-status:has-text('已部署')")
    sign_out(page)


def open_workspace(page, run: Run, agreement_id: str) -> str:  # type: ignore[no-untyped-def]
    """From the agreement's page through the hub's sign-in to JupyterLab; return the
    workspace server's URL."""
    sign_in(page, run.platform, "alice")
    page.goto(f"{run.platform}/researcher/agreements/{agreement_id}")
    link = page.locator("a.workspace-link")
    assert link.get_attribute("href") == (f"{run.hub}/hub/spawn/alice/{server_name(agreement_id)}")
    link.click()
    page.wait_for_selector("#username_input")  # the hub's own sign-in, same password
    page.fill("#username_input", "alice")
    page.fill("#password_input", DEMO_PASSWORD)
    page.click("#login_submit")
    server = f"{run.hub}/user/alice/{server_name(agreement_id)}"
    page.wait_for_url(f"{server}/lab**", timeout=WORKSPACE_MS)
    page.goto(f"{server}/lab/tree/welcome.ipynb")
    page.wait_for_selector(
        ".jp-Notebook .jp-RenderedMarkdown:has-text('欢迎使用数据沙箱')", timeout=WORKSPACE_MS
    )
    screenshot(page, f"whole-path-{run.log.parent.name}-welcome")
    return server


def hub_token(page, hub: str) -> str:  # type: ignore[no-untyped-def]
    """A hub API token for alice, asked for with her browser session (as the hub's token
    page does)."""
    xsrf = next(c["value"] for c in page.context.cookies(f"{hub}/hub/") if c["name"] == "_xsrf")
    answer = page.request.post(
        f"{hub}/hub/api/users/alice/tokens",
        data={"note": "whole-path test"},
        headers={"X-XSRFToken": xsrf},
    )
    assert answer.status == 201, answer.text()
    return answer.json()["token"]


def run_welcome(server: str, token: str) -> str:
    """Every code cell of the workspace's welcome notebook, in order, in a kernel of the
    workspace, with its switches on; return what they printed."""
    notebook = httpx.get(
        f"{server}/api/contents/welcome.ipynb",
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert notebook.status_code == 200, notebook.text
    cells = [c for c in notebook.json()["content"]["cells"] if c["cell_type"] == "code"]
    assert any(SUBMIT_TAG in c["metadata"].get("tags", []) for c in cells)
    kernel = Kernel(server, token)
    printed = []
    try:
        for i, cell in enumerate(cells):
            ran = kernel.run(cell["source"])
            assert ran.error is None, (cell["source"], ran.error, ran.stdout)
            printed.append(ran.stdout)
            if i == 0:  # the switches' cell: spend and submit, as a researcher decides to
                kernel.run("SPEND_BUDGET = True\nSUBMIT_EXPORTS = True")
        # The agreement's project folder beside her own files, writable.
        shared = kernel.run("df1.to_csv('project/by_district.csv', index=False)")
        assert shared.error is None, shared.error
    finally:
        kernel.close()
    project = httpx.get(
        f"{server}/api/contents/project", headers={"Authorization": f"token {token}"}, timeout=60
    )
    assert [f["name"] for f in project.json()["content"]] == ["by_district.csv"], project.text
    return "".join(printed)


def release(page, run: Run, request_id: str, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The provider starts the review and approves the request."""
    sign_in(page, run.platform, PROVIDER)
    page.click(f"#export-queue a[href='/provider/exports/{request_id}']")
    page.click("form.move-start_review button")
    page.wait_for_selector("form.move-approve")
    page.click("form.move-approve button")
    page.wait_for_selector("#export-status:has-text('已发布')")
    sign_out(page)
    # alice downloads the signed bundle from her request's page.
    sign_in(page, run.platform, "alice")
    page.goto(f"{run.platform}/researcher/exports/{request_id}")
    with page.expect_download() as info:
        page.click("#download-bundle")
    archive = tmp_path / f"bundle-{request_id}.zip"
    info.value.save_as(archive)
    sign_out(page)
    bundle = tmp_path / f"bundle-{request_id}"
    zipfile.ZipFile(archive).extractall(bundle)
    return bundle


def verify(run: Run, bundle: Path) -> None:
    """``sandbox release verify`` with the platform's own key accepts the bundle."""
    done = subprocess.run(
        [SANDBOX, "release", "verify", str(bundle)],
        env=run.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: "), done.stdout


def lab_label(page) -> str:  # type: ignore[no-untyped-def]
    """What JupyterLab's page shows in its label (``none`` when there is none)."""
    return page.evaluate("getComputedStyle(document.body, '::before').content")


def whole_path(page, run: Run, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """The path from application to verified bundles; returns the agreement's id."""
    agreement_id = f"AGR-E2E-{uuid.uuid4().hex[:6].upper()}"
    title = f"门诊季节性分析 {agreement_id}"
    apply(page, run.platform, title)
    approve(page, run.platform, title, agreement_id)
    provision(page, run.platform, agreement_id)

    server = open_workspace(page, run, agreement_id)
    label = lab_label(page)
    if "development" in run.log.parent.name:
        assert NOT_ISOLATED[0] in label and NOT_ISOLATED[1] in label, label
    else:
        assert label == "none", label
    printed = run_welcome(server, hub_token(page, run.hub))
    assert "[QG-" in printed  # the refused example, explained by its rule
    assert "ε spent" in printed  # the DP release, charged
    assert printed.count("检查通过 checks passed") == 2, printed  # the table, the figure
    submitted = dict(
        (form, rid) for rid, form in re.findall(r"export request (\d+) (table|figure)", printed)
    )
    assert set(submitted) == {"table", "figure"}, printed

    # alice sees both requests on her agreement's page.
    sign_in(page, run.platform, "alice")
    page.goto(f"{run.platform}/researcher/agreements/{agreement_id}")
    for rid in submitted.values():
        assert page.locator(f"a[href='/researcher/exports/{rid}']").count() == 1
    sign_out(page)

    for form, rid in submitted.items():
        bundle = release(page, run, rid, tmp_path)
        verify(run, bundle)
        names = {p.name for p in (bundle / "files").iterdir()}
        assert "welcome_table.csv" in names, names
        if form == "figure":
            assert {"chart.json", "figure.png", "figure.svg"} <= names, names
            assert (bundle / "files" / "figure.png").read_bytes().startswith(b"\x89PNG")
    return agreement_id


# --- The two runs ------------------------------------------------------------------------


@pytest.fixture(params=["docker", "swarm"])
def docker_run(request, docker_client, workspace_image: str, tmp_path: Path) -> Iterator[Run]:
    """``sandbox run`` with DockerSpawner, or with ``SANDBOX_HUB_BACKEND=swarm`` on a real
    single-node swarm (workers as the agreements' services, run from this checkout)."""
    from sandbox.provisioning.runtime import WorkspaceStop
    from sandbox.provisioning.swarm import stop as end_on_swarm
    from sandbox.workspaces import network

    backend = request.param
    extra = {"SANDBOX_HUB_IMAGE": workspace_image}
    if backend == "swarm":
        request.getfixturevalue("swarm_client")  # a swarm manager, or the skip saying why
        extra |= {
            "SANDBOX_HUB_BACKEND": "swarm",
            "SANDBOX_HUB_SWARM_WORKER_FROM_HOST": "true",
            "SANDBOX_HUB_SWARM_WORKER_IMAGE": workspace_image,
        }
    (tmp_path / backend).mkdir()
    run = sandbox_run(tmp_path / backend, "docker", **extra)
    try:
        yield run
    finally:
        output = stop(run)
        # `sandbox run` leaves networks and homes to the agreements' lifecycle: this
        # run's go with it.
        for agreement_id in set(re.findall(r"query worker for (AGR-[\w-]+)", output)):
            if backend == "swarm":
                end_on_swarm(docker_client, WorkspaceStop(agreement_id, "terminated"), ended=True)
                continue
            network.destroy_home_volumes(docker_client, agreement_id)
            network.teardown(docker_client, agreement_id)


@pytest.fixture
def dev_run(tmp_path: Path) -> Iterator[Run]:
    (tmp_path / "development").mkdir()
    run = sandbox_run(tmp_path / "development", "development")
    try:
        yield run
    finally:
        stop(run)


@pytest.mark.docker
def test_whole_path_on_docker_workspaces(page, docker_run: Run, tmp_path: Path) -> None:
    whole_path(page, docker_run, tmp_path)


def test_whole_path_on_the_development_workspace(page, dev_run: Run, tmp_path: Path) -> None:
    whole_path(page, dev_run, tmp_path)
