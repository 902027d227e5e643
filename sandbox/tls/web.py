"""What serving HTTPS needs besides uvicorn's ``ssl_certfile``/``ssl_keyfile``.

* :class:`StrictTransportSecurity`: every response carries ``Strict-Transport-Security``
  (production only: a browser that saw it for ``127.0.0.1`` would refuse plain HTTP to
  every development server on that address for a year). Behind a TLS-terminating proxy the
  platform still sends it, and the proxy passes it on.
* :func:`redirect_app`: the plain-HTTP listener (``SANDBOX_HTTP_REDIRECT_PORT``). A
  ``GET`` or ``HEAD`` gets a permanent redirect (308) to the same path over HTTPS; any
  other method is refused (403, rule ``tls-required``): its body, perhaps a password, has
  already crossed the wire in clear, and a redirect would hide that from the client.
* :class:`RedirectListener`: that app on its own uvicorn in a thread beside the server.
* :func:`install_https`: HSTS, and behind a TLS-terminating proxy the scheme and client it
  names (:mod:`sandbox.tls.proxied`).
* :func:`plain_http_refused`: production serves HTTPS itself, or plain HTTP on loopback
  only, to a TLS-terminating proxy on the same host.
"""

from __future__ import annotations

import json
import threading
import time
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from sandbox.settings import Settings
from sandbox.tls.proxied import TrustedProxyHeaders

#: One year; no ``includeSubDomains``: other services under the domain are not ours.
HSTS = b"max-age=31536000"
HEADER = b"strict-transport-security"

Scope = dict[str, Any]


class StrictTransportSecurity:
    """ASGI middleware adding :data:`HSTS` to every HTTP response."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message["headers"] = [*headers, (HEADER, HSTS)]
            await send(message)

        await self.app(scope, receive, sending)


def install_https(app: Any, settings: Settings) -> None:
    """Send HSTS from ``app`` in production only; believe the trusted proxies' scheme and
    client (:mod:`sandbox.tls.proxied`) when there are any."""
    if settings.environment == "production":
        app.add_middleware(StrictTransportSecurity)
    if settings.trusted_proxies:
        app.add_middleware(TrustedProxyHeaders, proxies=settings.trusted_proxies)


def _refuse(status: int, rule: str, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": message, "rule": rule, "article": None}).encode()
    return status, [(b"content-type", b"application/json")], body


def _answer(scope: Scope, https_port: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = dict(scope.get("headers", []))
    host = urlsplit("//" + headers.get(b"host", b"").decode("latin-1")).hostname
    if not host:
        return _refuse(400, "tls-redirect", "no Host header: this port only redirects to HTTPS")
    netloc = f"[{host}]" if ":" in host else host
    if https_port != 443:
        netloc += f":{https_port}"
    target = f"https://{netloc}{scope.get('raw_path', b'').decode('latin-1') or scope['path']}"
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    if scope["method"] not in ("GET", "HEAD"):
        return _refuse(
            403,
            "tls-required",
            f"plain HTTP is refused: send this request to {target} (what it carried has "
            "crossed the network unencrypted; change any password it held)",
        )
    return 308, [(b"location", target.encode("latin-1"))], b""


def redirect_app(https_port: int) -> Any:
    """The plain-HTTP listener's ASGI app: ``GET``/``HEAD`` redirect to HTTPS on
    ``https_port`` at the host the client asked for; anything else is refused."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # served with lifespan off: HTTP only
            return
        status, headers, body = _answer(scope, https_port)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class RedirectListener:
    """:func:`redirect_app` on ``host:port`` in a thread of its own until :meth:`stop`."""

    def __init__(self, host: str, port: int, https_port: int):
        import uvicorn

        config = uvicorn.Config(
            redirect_app(https_port), host=host, port=port, lifespan="off", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="http-redirect", daemon=True)

    def start(self, limit: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + limit
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP redirect listener did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def plain_http_refused(settings: Settings, host: str) -> str | None:
    """Why production may not serve plain HTTP on ``host``, or ``None``. Without its own
    certificate the platform must listen on loopback behind a proxy it trusts: anywhere
    else, passwords and tokens would cross a network in clear."""
    if settings.environment != "production" or settings.tls_cert is not None:
        return None
    try:
        loopback = ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback and settings.trusted_proxies:
        return None
    return (
        f"production does not serve plain HTTP on {host} (rule tls-required): set "
        "SANDBOX_TLS_CERT and SANDBOX_TLS_KEY, or listen on loopback only behind a "
        "TLS-terminating reverse proxy named in SANDBOX_TRUSTED_PROXIES"
    )


def uvicorn_tls(settings: Settings) -> dict[str, str]:
    """uvicorn's keyword arguments to serve HTTPS with the configured pair (none: HTTP)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return {}
    return {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
