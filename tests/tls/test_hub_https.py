"""The hub's public URL over HTTPS: a real JupyterHub whose configurable-http-proxy serves
the configured certificate (``SANDBOX_HUB_SSL_CERT``/``KEY``). The platform's clients of
the hub (the researcher's page probe and the API that stops servers) verify it against
the platform's CA and fail against the system's authorities; plain HTTP gets no answer,
the proxy's redirect port sends it to HTTPS, and in production the hub's pages carry HSTS;
``sandbox run --tls`` gives the hub an https URL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from hub_config.settings import HubSettings
from sandbox.cli.hub import with_workspaces
from sandbox.settings import Settings
from sandbox.tls import development
from sandbox.workspaces.availability import hub_answers
from sandbox.workspaces.hub_api import HubApi, HubUnavailable
from tests.tls.test_platform_https import SANDBOX, _environment, _stop
from tests.waiting import eventually
from tests.workspaces.hub import CONTROL_PLANE_TOKEN, Hub, free_port

# These tests start hubs, as tests/workspaces does: one after another on one test worker.
pytestmark = pytest.mark.xdist_group("host-firewall")


def test_the_hub_serves_https_that_the_platform_verifies_against_its_ca(tmp_path: Path) -> None:
    issued = development.server_certificate(tmp_path / "tls", "hub", ["127.0.0.1"])
    state = tmp_path / "hub"
    state.mkdir()
    redirect_port = free_port()
    env = {
        "SANDBOX_HUB_SSL_CERT": str(issued.cert),
        "SANDBOX_HUB_SSL_KEY": str(issued.key),
        "SANDBOX_HUB_HTTP_REDIRECT_PORT": str(redirect_port),
        "SANDBOX_ENVIRONMENT": "production",
        "SANDBOX_SECRET_KEY": "a-test-secret-that-is-not-the-default",
        "SANDBOX_DATA_DIR": str(tmp_path / "var"),
    }
    hub = Hub(state, env, ca=issued.ca)  # waits for /hub/api/ over verified HTTPS
    try:
        assert hub.url.startswith("https://")
        assert hub_answers(hub.url, issued.ca)
        assert hub.api.get("/").headers["strict-transport-security"] == "max-age=31536000"
        moved = httpx.get(f"http://127.0.0.1:{redirect_port}/hub/login?next=x", timeout=10)
        assert moved.status_code == 301
        assert moved.headers["location"] == f"{hub.url}/hub/login?next=x"
        with HubApi(hub.url, CONTROL_PLANE_TOKEN, ca=issued.ca) as api:
            assert api.server_running("nobody", "nothing") is False  # an answer: 404

        # The system's authorities do not know the CA: no answer, the token never sent.
        assert not hub_answers(hub.url)
        with (
            HubApi(hub.url, CONTROL_PLANE_TOKEN) as api,
            pytest.raises(HubUnavailable, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            api.server_running("nobody", "nothing")

        # Plain HTTP to the proxy's port: the handshake fails, nothing is answered.
        with pytest.raises(httpx.TransportError):
            httpx.get(hub.url.replace("https://", "http://") + "/hub/api/", timeout=10)
    finally:
        hub.stop()


def test_sandbox_run_with_tls_gives_the_hub_an_https_url(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    issued = development.server_certificate(data_dir / "tls", "platform", ["127.0.0.1"])
    settings = Settings(
        data_dir=data_dir, tls_cert=issued.cert, tls_key=issued.key, tls_ca=issued.ca
    )
    ready = with_workspaces(settings)
    assert ready.hub_url == "https://127.0.0.1:8081"
    assert ready.query_service_url.startswith("https://")
    assert with_workspaces(Settings(data_dir=data_dir)).hub_url == "http://127.0.0.1:8081"


def test_a_hub_certificate_without_its_key_or_a_redirect_without_tls_is_refused() -> None:
    with pytest.raises(ValidationError, match="tls-pair"):
        HubSettings(ssl_cert="hub.pem")
    with pytest.raises(ValidationError, match="SANDBOX_HUB_HTTP_REDIRECT_PORT"):
        HubSettings(http_redirect_port=8080)


def test_make_run_serves_the_hub_over_https_from_the_development_ca(tmp_path: Path) -> None:
    data_dir, port, hub_port = tmp_path / "var", free_port(), free_port()
    env = _environment(
        data_dir,
        SANDBOX_ENVIRONMENT="development",
        SANDBOX_PORT=str(port),
        SANDBOX_HUB_START="development",
        SANDBOX_HUB_URL=f"http://127.0.0.1:{hub_port}",
        SANDBOX_HUB_API_PORT=str(free_port()),
        SANDBOX_HUB_PROXY_API_URL=f"http://127.0.0.1:{free_port()}",
        SANDBOX_QUERY_SERVICE_URL=f"http://127.0.0.1:{free_port()}/qs",
        SANDBOX_DUTIES_INTERVAL="0",
    )
    proc = subprocess.Popen(
        [SANDBOX, "run", "--tls"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    hub = f"https://127.0.0.1:{hub_port}"
    try:
        ca = data_dir / "tls" / development.CA_CERT
        eventually(lambda: ca.exists() and hub_answers(hub, ca), "the hub", proc=proc, limit=120)
        assert not hub_answers(hub)  # the system's authorities do not know the CA
    finally:
        output = _stop(proc)
    assert f"JupyterHub at {hub}/" in output, output
