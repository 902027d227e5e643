"""The address a request came from, as the sign-in backoff keys on it.

``X-Forwarded-For`` is believed only from the reverse proxies the operator configured
(``SANDBOX_TRUSTED_PROXIES``; none by default): anyone else can write any address in it,
and an attacker who could choose their address would escape the per-address backoff or
push it onto someone else. The header is read from the right, each hop appended by the
proxy before it, and the first address that is not a trusted proxy is the client.
``sandbox serve`` turns uvicorn's own header handling off so that the socket peer reaching
this module is the real one.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from fastapi import Request

from sandbox.accounts.attempts import ADDRESS_CHARS


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def trusted(address: str, proxies: Iterable[str]) -> bool:
    """Whether ``address`` is one of the ``proxies`` (addresses or networks)."""
    parsed = _parse(address)
    return parsed is not None and any(
        parsed in ip_network(proxy, strict=False) for proxy in proxies
    )


def client_address(request: Request, trusted_proxies: Iterable[str]) -> str:
    """The client's address: the socket peer, or what trusted proxies say in front of it.

    Walking ``X-Forwarded-For`` from the right stops at the first address no trusted proxy
    has, which is the client; an entry that is not an address ends the walk at the proxy
    that passed it on (garbage is never taken for a client).
    """
    proxies = list(trusted_proxies)
    peer = request.client.host if request.client else ""
    if not proxies or not trusted(peer, proxies):
        return peer[:ADDRESS_CHARS]
    hops = [h for field in request.headers.getlist("x-forwarded-for") for h in field.split(",")]
    current = peer
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:
            break
        current = str(parsed)
        if not trusted(current, proxies):
            break
    return current[:ADDRESS_CHARS]
