"""The operator's guide's alternative: Debian's nginx terminating TLS in front of a
``sandbox serve`` on loopback, run from the very block the guide tells operators to copy.

A client verifying against the test CA completes the handshake and one trusting the
system's authorities does not; through the proxy the platform sees ``https`` (a redirect
it builds names it) and the client's own address (sign-in attempts keep it, not the
proxy's nor one the client wrote in ``X-Forwarded-For``); the same headers sent straight
to the platform by a peer that is not the trusted proxy are ignored; the proxy's plain
HTTP port moves GET to HTTPS and refuses a POST; HSTS passes through."""

from __future__ import annotations

import re
import sqlite3
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.tls import development
from tests.resources import require_nginx
from tests.tls.test_platform_https import SANDBOX, _environment, _stop
from tests.waiting import eventually
from tests.workspaces.hub import free_port

GUIDES = Path(__file__).resolve().parents[2] / "docs"
#: The addresses the test's clients connect from (all of 127.0.0.0/8 is loopback): the
#: proxy reaches the platform from 127.0.0.1, the one address the platform trusts.
THROUGH_PROXY, STRAIGHT = "127.0.0.5", "127.0.0.6"
FORGED = "203.0.113.7"


def _guide_config(language: str) -> str:
    """The nginx block of the guide's TLS section (the one that sets X-Forwarded-Proto)."""
    text = (GUIDES / language / "operator.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```nginx\n(.*?)```", text, re.S) if "Proto" in b]
    return block


def _directives(config: str) -> list[str]:
    """The configuration without its comments, which the two guides word apart."""
    lines = (line.split("#", 1)[0].strip() for line in config.splitlines())
    return [line for line in lines if line]


def _replace(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the guide's nginx block no longer has {old!r} once"
    return text.replace(old, new)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[dict[str, object]]:
    """A production platform on loopback trusting 127.0.0.1, and nginx in front of it with
    the guide's configuration."""
    nginx = require_nginx()
    issued = development.server_certificate(tmp_path / "tls", "proxy", ["127.0.0.1"])
    port, https_port, http_port = free_port(), free_port(), free_port()
    env = _environment(
        tmp_path / "var",
        SANDBOX_ENVIRONMENT="production",
        SANDBOX_SECRET_KEY="a-test-secret-that-is-not-the-default",
        SANDBOX_TRUSTED_PROXIES='["127.0.0.1"]',
        SANDBOX_DUTIES_INTERVAL="0",
    )
    platform = subprocess.Popen(
        [SANDBOX, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    site = _guide_config("en")
    for old, new in [
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("/etc/sandbox/tls/platform.pem", str(issued.cert)),
        ("/etc/sandbox/tls/platform-key.pem", str(issued.key)),
        ("http://127.0.0.1:8000", f"http://127.0.0.1:{port}"),
    ]:
        site = _replace(site, old, new)
    run = tmp_path / "nginx"
    run.mkdir()
    (run / "sandbox.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {run / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
    (run / "nginx.conf").write_text(
        f"daemon off;\npid {run / 'nginx.pid'};\nerror_log {run / 'error.log'};\n"
        f"events {{}}\nhttp {{\n    access_log {run / 'access.log'};\n{temp}\n"
        f"    include {run / 'sandbox.conf'};\n}}\n"
    )
    proxy = subprocess.Popen(
        [nginx, "-p", str(run), "-c", str(run / "nginx.conf"), "-e", str(run / "error.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"https://127.0.0.1:{https_port}"
    try:
        with _trusting(issued.ca) as client:
            eventually(
                lambda: client.get(f"{base}/api/catalog").status_code == 200,
                "the platform through nginx",
                proc=proxy,
            )
        yield {
            "base": base,
            "ca": issued.ca,
            "platform": f"http://127.0.0.1:{port}",
            "plain": f"http://127.0.0.1:{http_port}",
            "database": tmp_path / "var" / "sandbox.db",
        }
    finally:
        nginx_output = _stop(proxy)
        output = _stop(platform)
    assert proxy.returncode == 0, nginx_output + (run / "error.log").read_text()
    assert "Traceback" not in output, output


def _trusting(ca: Path, source: str = THROUGH_PROXY) -> httpx.Client:
    """A client verifying against ``ca``, connecting from loopback address ``source``."""
    context = ssl.create_default_context(cafile=str(ca))
    transport = httpx.HTTPTransport(verify=context, local_address=source)
    return httpx.Client(transport=transport, timeout=10)


def _attempt_addresses(database: Path) -> dict[str, str]:
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT username, address FROM sign_in_attempts"))


def test_nginx_terminates_tls_and_the_platform_believes_it_alone(
    proxied: dict[str, object],
) -> None:
    base, ca, platform = str(proxied["base"]), Path(str(proxied["ca"])), proxied["platform"]
    forged = {"X-Forwarded-For": FORGED, "X-Forwarded-Proto": "https"}

    with _trusting(ca) as client:
        answer = client.get(f"{base}/api/catalog")
        assert answer.status_code == 200
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
        # A URL the platform builds (the trailing slash's redirect) names https and the
        # proxy's address, not the plain-HTTP loopback it was reached on.
        moved = client.get(f"{base}/api/catalog/")
        assert moved.status_code == 307
        assert moved.headers["location"] == f"{base}/api/catalog"
        # The client's address through the proxy: its own, whatever it wrote itself.
        refused = client.post(
            f"{base}/api/auth/token",
            data={"username": "through-proxy", "password": "wrong"},
            headers=forged,
        )
        assert refused.status_code == 403

    # The system's authorities do not know the test CA: the handshake fails verification.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{base}/api/catalog", timeout=10)

    # Straight to the platform from a peer that is not the trusted proxy: the same headers
    # are ignored; the redirect stays on plain HTTP and the address is the peer's.
    transport = httpx.HTTPTransport(local_address=STRAIGHT)
    with httpx.Client(transport=transport, timeout=10) as straight:
        moved = straight.get(f"{platform}/api/catalog/", headers=forged)
        assert moved.headers["location"] == f"{platform}/api/catalog"
        refused = straight.post(
            f"{platform}/api/auth/token",
            data={"username": "straight", "password": "wrong"},
            headers=forged,
        )
        assert refused.status_code == 403

    assert _attempt_addresses(Path(str(proxied["database"]))) == {
        "through-proxy": THROUGH_PROXY,
        "straight": STRAIGHT,
    }

    # The proxy's plain-HTTP port moves a GET to HTTPS (port 443) and refuses a POST.
    plain = str(proxied["plain"])
    moved = httpx.get(f"{plain}/catalog?q=clinic", timeout=10)
    assert moved.status_code == 308
    assert moved.headers["location"] == "https://127.0.0.1/catalog?q=clinic"
    refused = httpx.post(f"{plain}/api/auth/token", data={"password": "x"}, timeout=10)
    assert refused.status_code == 403


def test_the_chinese_guide_gives_the_same_nginx_configuration() -> None:
    assert _directives(_guide_config("zh")) == _directives(_guide_config("en"))
