"""Login to the hub with the platform's own accounts (the control plane checks)."""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from traitlets import Any


class ControlPlaneAuthenticator(Authenticator):
    """Accepts a username and password only if the control plane says they match.

    Never grants hub admin: the admin role can access every server, and operators
    must not read researchers' workspaces (R16).
    """

    control_plane = Any(
        help="A hub_config.control_plane.ControlPlane that checks the password."
    ).tag(config=True)

    async def authenticate(self, handler, data: dict) -> str | None:
        username, password = data.get("username", ""), data.get("password", "")
        if not username or not password:
            return None
        if await self.control_plane.authenticate(username, password):
            return username
        return None
