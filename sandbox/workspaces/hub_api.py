"""The control plane's client of JupyterHub's REST API: stop an agreement's servers.

The platform never opens a workspace; it only stops them when an agreement is
suspended, terminated or expires (Shanghai Art.26, 36; R11). It authenticates
with the scoped service token the hub config defines (``SANDBOX_HUB_API_TOKEN``,
role ``sandbox-control-plane`` in hub_config/jupyterhub_config.py), which can
start and stop servers but holds no ``access:servers`` scope.

Wire format used (JupyterHub REST API)::

    DELETE {hub_url}/hub/api/users/{user}/servers/{server_name}   body {"remove": bool}
      204 stopped · 202 stopping (poll) · 404 no such user or server
    GET    {hub_url}/hub/api/users/{user}
      200 {"servers": {name: {"ready": ..., "pending": ...}}, ...} · 404 no such user
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from urllib.parse import quote

import httpx


class HubUnavailable(Exception):
    """The hub did not answer, or refused the platform's token; the caller falls back to
    removing the containers through Docker so that nothing keeps running."""


class HubApi:
    """Stops named servers through the hub and waits until the hub says they are gone."""

    def __init__(self, hub_url: str, token: str, *, ca: Path | None = None, timeout: float = 30.0):
        """``ca``: the CA an HTTPS hub's certificate is verified against (``SANDBOX_TLS_CA``;
        none: the system's authorities)."""
        self._http = httpx.Client(
            base_url=hub_url.rstrip("/") + "/hub/api",
            headers={"Authorization": f"token {token}"},
            timeout=timeout,
            verify=ssl.create_default_context(cafile=str(ca)) if ca else True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise HubUnavailable(f"the hub did not answer: {exc}") from exc
        if response.status_code in (401, 403):
            raise HubUnavailable(f"the hub refused the platform's token ({response.status_code})")
        return response

    def server_running(self, username: str, server_name: str) -> bool:
        """Whether the hub still has the named server (ready, starting or stopping)."""
        response = self._request("GET", f"/users/{quote(username)}")
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return server_name in response.json().get("servers", {})

    def stop_server(
        self, username: str, server_name: str, *, remove: bool, limit: float = 120.0
    ) -> bool:
        """Stop ``username``'s named server and wait until the hub no longer lists it.

        ``remove`` also deletes the named server's record in the hub (the agreement has
        ended). Returns whether there was a server to stop.
        """
        path = f"/users/{quote(username)}/servers/{quote(server_name)}"
        response = self._request("DELETE", path, json={"remove": remove})
        if response.status_code == 404:
            return False
        if response.status_code not in (202, 204):
            raise HubUnavailable(f"the hub answered {response.status_code}: {response.text}")
        deadline = time.monotonic() + limit
        while self.server_running(username, server_name):
            if time.monotonic() > deadline:
                raise HubUnavailable(f"{username}/{server_name} did not stop within {limit} s")
            time.sleep(0.2)
        return True
