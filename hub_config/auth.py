"""Login to the hub with the platform's own accounts (the control plane checks)."""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Any

from hub_config.control_plane import SignInRefused, SignInThrottled


class ControlPlaneAuthenticator(Authenticator):
    """Accepts a username and password only if the control plane says they match.

    Never grants hub admin: the admin role can access every server, and operators
    must not read researchers' workspaces (R16).
    """

    control_plane = Any(
        help="A hub_config.control_plane.ControlPlane that checks the password."
    ).tag(config=True)

    async def authenticate(self, handler, data: dict) -> str | None:
        """The username if the control plane accepts the password, and the authenticator's
        code of a researcher who has a second factor (a refusal shows its reason and rule,
        HTTP 403). The researcher's address goes with it, so failed sign-ins slow down that
        address and not every researcher behind the hub; while they must wait, the login
        page shows the control plane's message (HTTP 429)."""
        username, password = data.get("username", ""), data.get("password", "")
        if not username or not password:
            return None
        address = handler.request.remote_ip if handler is not None else ""
        otp = data.get("otp", "")  # the login form's field when request_otp is on
        try:
            accepted = await self.control_plane.authenticate(username, password, address, otp)
        except SignInRefused as exc:
            raise web.HTTPError(403, "%s", str(exc), reason="Forbidden") from None
        except SignInThrottled as exc:
            raise web.HTTPError(429, "%s", str(exc), reason="Too Many Requests") from None
        return username if accepted else None
