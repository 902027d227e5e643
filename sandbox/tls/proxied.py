"""Behind a TLS-terminating reverse proxy (the operator's guide's nginx): the scheme and
client the proxy saw, believed only from a peer in ``SANDBOX_TRUSTED_PROXIES``.

uvicorn's own header handling stays off (``sandbox serve``): it would take an entry that is
not an address for the client, where the sign-in backoff stops at the proxy that passed it
on (:mod:`sandbox.http.client_address`). Here a trusted peer's
``X-Forwarded-Proto`` sets the request's scheme, so the URLs the platform builds (a
redirect's ``Location``) say ``https``, and its ``X-Forwarded-For`` sets the client as
:func:`~sandbox.http.client_address.client_address` reads it, so every check of the
client's address (the sign-in backoff, ``/metrics`` for loopback only) sees the client,
not the proxy on loopback. Reading it again later gives the same address. From any other
peer both headers are ignored: anyone can write them.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sandbox.http.client_address import client_address, trusted

Scope = dict[str, Any]
#: The schemes of a request the proxy received over TLS, and over plain HTTP.
SCHEMES = {"http": ("https", "http"), "websocket": ("wss", "ws")}


class TrustedProxyHeaders:
    """ASGI middleware: a trusted proxy's ``X-Forwarded-Proto`` and ``-For`` become the
    request's scheme and client."""

    def __init__(self, app: Any, proxies: list[str]):
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        peer = (scope.get("client") or ("", 0))[0]
        if scope["type"] in SCHEMES and trusted(peer, self.proxies):
            secure, plain = SCHEMES[scope["type"]]
            request = Request(scope)
            said = ",".join(request.headers.getlist("x-forwarded-proto"))
            scope = dict(scope)
            if said:  # the last one is the nearest proxy's
                proto = said.split(",")[-1].strip().lower()
                scope["scheme"] = secure if proto == "https" else plain
            scope["client"] = (client_address(request, self.proxies), 0)
        await self.app(scope, receive, send)
