"""What the hub asks the control plane, as a small interface and its HTTP client.

The hub never decides who may work on which agreement: it asks. Both calls carry
the hub's service token (``Authorization: Bearer``). Wire format::

    POST {platform_url}/api/hub/authenticate
      {"username": "alice", "password": "...", "address": "203.0.113.7", "otp": "123456"}
      200 {"authenticated": true}
      403 {"error": "the code is wrong ...", "rule": "mfa-code", "article": "Rizhao Art.29 (R13)"}
      429 {"error": "... wait 8 s ...", "rule": "sign-in-backoff-account", "retry_after": 8}
    POST {platform_url}/api/hub/spawn-authorization
      {"username": "alice", "server_name": "agr-2026-0001"}
      200 {"agreement_id": "AGR-2026-0001", "token": "...",
           "expires_at": "2027-05-31T23:59:59+08:00",
           "network_name": "sandbox-agr-2026-0001-1a2b3c4d"}

The server name is the agreement id in lower case (JupyterHub's rule for server
names); the control plane answers with the id as it stores it.
      403 {"error": "why", "rule": "rule-id", "article": "Shanghai Art.26" | null}
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx


@dataclass(frozen=True)
class SpawnAuthorization:
    """The control plane's yes to one workspace: a token bound to the agreement."""

    agreement_id: str
    token: str
    expires_at: datetime
    network_name: str


class SpawnRefused(Exception):
    """The control plane refused the spawn; the message is shown to the researcher."""


class SignInRefused(Exception):
    """The password was right but the second factor was not (missing, wrong or replayed);
    the control plane's message, with its rule, is shown to the researcher."""


class SignInThrottled(Exception):
    """Too many failed sign-ins: the control plane says how long to wait (its message, with
    the rule, is shown to the researcher)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def _cited(refusal: dict) -> str:
    """The control plane's refusal with its rule and article, as the researcher sees it."""
    cite = "; ".join(str(part) for part in (refusal.get("rule"), refusal.get("article")) if part)
    return refusal.get("error", "spawn refused") + (f" [{cite}]" if cite else "")


class ControlPlane(Protocol):
    async def authenticate(
        self, username: str, password: str, address: str = "", otp: str = ""
    ) -> bool:
        """Whether the password is right; ``address`` is the researcher's, as the hub saw
        it, ``otp`` their authenticator's code. Raise :class:`SignInRefused` when the
        second factor fails, :class:`SignInThrottled` while failed sign-ins make them wait."""
        ...

    async def authorize_spawn(self, username: str, server_name: str) -> SpawnAuthorization:
        """Raise :class:`SpawnRefused` unless ``username`` may work now on the agreement
        whose lower-cased id is ``server_name``."""
        ...


class HttpControlPlane:
    """:class:`ControlPlane` over the platform's hub API."""

    def __init__(
        self, platform_url: str, token: str, *, timeout: float = 10.0, ca: str | None = None
    ):
        # Plain values only: JupyterHub deep-copies its configuration, this object included.
        self.platform_url = platform_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        #: The CA file an HTTPS platform's certificate is verified against (None: the
        #: system's authorities).
        self._ca = ca

    async def _post(self, path: str, payload: dict) -> httpx.Response:
        verify = ssl.create_default_context(cafile=self._ca) if self._ca else True
        async with httpx.AsyncClient(
            headers=self._headers, timeout=self._timeout, verify=verify
        ) as client:
            return await client.post(self.platform_url + path, json=payload)

    async def authenticate(
        self, username: str, password: str, address: str = "", otp: str = ""
    ) -> bool:
        response = await self._post(
            "/api/hub/authenticate",
            {"username": username, "password": password, "address": address, "otp": otp},
        )
        if response.status_code == 403:
            raise SignInRefused(_cited(response.json()))
        if response.status_code == 429:
            body = response.json()
            retry_after = int(response.headers.get("Retry-After", body.get("retry_after", 1)))
            raise SignInThrottled(_cited(body), retry_after)
        response.raise_for_status()
        return response.json()["authenticated"] is True

    async def authorize_spawn(self, username: str, server_name: str) -> SpawnAuthorization:
        response = await self._post(
            "/api/hub/spawn-authorization", {"username": username, "server_name": server_name}
        )
        if response.status_code in (403, 404, 409):
            raise SpawnRefused(_cited(response.json()))
        response.raise_for_status()
        body = response.json()
        return SpawnAuthorization(
            agreement_id=body["agreement_id"],
            token=body["token"],
            expires_at=datetime.fromisoformat(body["expires_at"]),
            network_name=body["network_name"],
        )
