"""What the hub asks the control plane, as a small interface and its HTTP client.

The hub never decides who may work on which agreement: it asks. Both calls carry
the hub's service token (``Authorization: Bearer``). Wire format::

    POST {platform_url}/api/hub/authenticate
      {"username": "alice", "password": "..."}
      200 {"authenticated": true}
    POST {platform_url}/api/hub/spawn-authorization
      {"username": "alice", "agreement_id": "AGR-2026-0001"}
      200 {"token": "...", "expires_at": "2027-05-31T23:59:59+08:00",
           "network_name": "sandbox-agr-2026-0001-1a2b3c4d"}
      403 {"error": "why", "rule": "rule-id", "article": "Shanghai Art.26" | null}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx


@dataclass(frozen=True)
class SpawnAuthorization:
    """The control plane's yes to one workspace: a token bound to the agreement."""

    token: str
    expires_at: datetime
    network_name: str


class SpawnRefused(Exception):
    """The control plane refused the spawn; the message is shown to the researcher."""


class ControlPlane(Protocol):
    async def authenticate(self, username: str, password: str) -> bool: ...

    async def authorize_spawn(self, username: str, agreement_id: str) -> SpawnAuthorization:
        """Raise :class:`SpawnRefused` unless ``username`` may work on the agreement now."""
        ...


class HttpControlPlane:
    """:class:`ControlPlane` over the platform's hub API."""

    def __init__(self, platform_url: str, token: str, *, timeout: float = 10.0):
        self._client = httpx.AsyncClient(
            base_url=platform_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    async def authenticate(self, username: str, password: str) -> bool:
        response = await self._client.post(
            "/api/hub/authenticate", json={"username": username, "password": password}
        )
        response.raise_for_status()
        return response.json()["authenticated"] is True

    async def authorize_spawn(self, username: str, agreement_id: str) -> SpawnAuthorization:
        response = await self._client.post(
            "/api/hub/spawn-authorization",
            json={"username": username, "agreement_id": agreement_id},
        )
        if response.status_code in (403, 404, 409):
            raise SpawnRefused(response.json().get("error", "spawn refused"))
        response.raise_for_status()
        body = response.json()
        return SpawnAuthorization(
            token=body["token"],
            expires_at=datetime.fromisoformat(body["expires_at"]),
            network_name=body["network_name"],
        )
