"""The platform over HTTPS, as real processes on loopback: ``sandbox run --tls`` (what
``make run`` runs) makes a development CA and certificate once under ``var/tls`` and says
how to trust it; ``sandbox serve`` with ``SANDBOX_TLS_CERT``/``KEY`` serves HTTPS that a
client verifying against that CA accepts and one with the system's authorities refuses;
the plain-HTTP port redirects GET to HTTPS and refuses a POST; HSTS in production only."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from sandbox.settings import Settings
from sandbox.tls import development
from sandbox.tls.web import plain_http_refused
from tests.waiting import eventually
from tests.workspaces.hub import free_port

SANDBOX = str(Path(sys.executable).with_name("sandbox"))


def _environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "SANDBOX_DATA_DIR": str(data_dir), **extra}
    env.pop("SANDBOX_DATABASE_URL", None)
    return env


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def _trusting(ca: Path) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=10)


def test_make_run_serves_https_with_a_development_ca_made_once(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "var", free_port()
    env = _environment(
        data_dir,
        SANDBOX_ENVIRONMENT="development",
        SANDBOX_PORT=str(port),
        SANDBOX_HUB_START="none",
        SANDBOX_DUTIES_INTERVAL="0",
    )
    tls = data_dir / "tls"
    outputs, certificates = [], []
    for _ in range(2):  # the second run reuses what the first made
        proc = subprocess.Popen(
            [SANDBOX, "run", "--tls"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            eventually(lambda: (tls / "platform.pem").exists(), "the certificate", proc=proc)
            with _trusting(tls / development.CA_CERT) as client:
                eventually(
                    lambda: client.get(f"https://127.0.0.1:{port}/api/catalog").status_code == 200,
                    "the platform over HTTPS",
                    proc=proc,
                )
                response = client.get(f"https://localhost:{port}/api/catalog")
                assert "strict-transport-security" not in response.headers  # development
        finally:
            outputs.append(_stop(proc))
        certificates.append([(tls / name).read_bytes() for name in ("platform.pem", "ca.pem")])
    ca = (tls / development.CA_CERT).resolve()
    assert f"platform:  https://127.0.0.1:{port}/" in outputs[0]
    assert f"development CA {ca}" in outputs[0] and "update-ca-certificates" in outputs[0]
    assert certificates[0] == certificates[1]  # made once, reused
    for key in ("platform-key.pem", development.CA_KEY):
        assert (tls / key).stat().st_mode & 0o777 == 0o600


def test_the_development_ca_issues_for_private_addresses_only_and_reissues_for_new_hosts(
    tmp_path: Path,
) -> None:
    first = development.server_certificate(tmp_path, "worker", ["10.213.0.1"]).cert.read_bytes()
    again = development.server_certificate(tmp_path, "worker", ["10.213.0.1"]).cert.read_bytes()
    assert again == first
    wider = development.server_certificate(tmp_path, "worker", ["10.213.0.1", "172.18.0.1"])
    assert wider.cert.read_bytes() != first
    with pytest.raises(development.CertificateRefused, match="8.8.8.8.*tls-dev-ca-names"):
        development.server_certificate(tmp_path, "public", ["8.8.8.8"])
    with pytest.raises(development.CertificateRefused, match="example.org"):
        development.server_certificate(tmp_path, "public", ["example.org"])


@pytest.mark.parametrize("environment", ["production", "development"])
def test_serve_verifies_against_the_ca_only_redirects_http_and_sends_hsts_in_production(
    tmp_path: Path, environment: str
) -> None:
    issued = development.server_certificate(tmp_path / "tls", "platform", ["127.0.0.1"])
    port, http_port = free_port(), free_port()
    env = _environment(
        tmp_path / "var",
        SANDBOX_ENVIRONMENT=environment,
        SANDBOX_SECRET_KEY="a-test-secret-that-is-not-the-default",
        SANDBOX_PORT=str(port),
        SANDBOX_HTTP_REDIRECT_PORT=str(http_port),
        SANDBOX_TLS_CERT=str(issued.cert),
        SANDBOX_TLS_KEY=str(issued.key),
        SANDBOX_DUTIES_INTERVAL="0",
    )
    proc = subprocess.Popen(
        [SANDBOX, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"https://127.0.0.1:{port}"
    try:
        with _trusting(issued.ca) as client:
            eventually(
                lambda: client.get(f"{base}/api/catalog").status_code == 200,
                "the platform over HTTPS",
                proc=proc,
            )
            hsts = client.get(f"{base}/api/catalog").headers.get("strict-transport-security")
            assert hsts == ("max-age=31536000" if environment == "production" else None)

        # The system's authorities do not know the CA: the handshake fails verification.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/api/catalog", timeout=10)

        # Plain HTTP to the HTTPS port gets no answer from the application.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/api/catalog", timeout=10)

        # The plain-HTTP port redirects a GET, keeping path and query, and refuses a POST.
        plain = f"http://127.0.0.1:{http_port}"
        moved = httpx.get(f"{plain}/catalog?q=clinic", timeout=10)
        assert moved.status_code == 308
        assert moved.headers["location"] == f"{base}/catalog?q=clinic"
        refused = httpx.post(f"{plain}/api/auth/token", data={"password": "x"}, timeout=10)
        assert refused.status_code == 403 and refused.json()["rule"] == "tls-required"
        assert f"{base}/api/auth/token" in refused.json()["error"]
    finally:
        output = _stop(proc)
    assert proc.returncode == 128 + signal.SIGTERM, output


def test_a_certificate_without_its_key_or_a_redirect_without_tls_is_refused() -> None:
    with pytest.raises(ValidationError, match="tls-pair"):
        Settings(tls_cert=Path("server.pem"))
    with pytest.raises(ValidationError, match="tls-redirect"):
        Settings(http_redirect_port=8080)


def test_production_serves_plain_http_only_on_loopback_behind_a_trusted_proxy(
    tmp_path: Path,
) -> None:
    env = _environment(
        tmp_path / "var",
        SANDBOX_ENVIRONMENT="production",
        SANDBOX_SECRET_KEY="a-test-secret-that-is-not-the-default",
        SANDBOX_DUTIES_INTERVAL="0",
    )
    done = subprocess.run(
        [SANDBOX, "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "(rule tls-required)" in done.stderr

    production = Settings(environment="production", secret_key="not-the-default-secret")
    behind = production.model_copy(update={"trusted_proxies": ["127.0.0.1"]})
    assert plain_http_refused(behind, "127.0.0.1") is None  # the guide's reverse proxy
    assert plain_http_refused(behind, "0.0.0.0") is not None  # the proxy's hop on a network
    assert plain_http_refused(Settings(environment="development"), "0.0.0.0") is None
