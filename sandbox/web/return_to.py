"""Where signing in returns to: the page an anonymous visitor was sent to sign in from.

The page travels as ``/signin?next=/researcher/applications/3`` and back through the form.
Only a path on this site is ever followed; anything a browser could read as another site
(``//host``, ``/\\host``, ``https://host``, a path with the tabs or line breaks a browser
drops) is ignored and the user lands on their role's home instead, so a sign-in link can
never send someone elsewhere (an open redirect).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import Request

from sandbox.accounts.models import Role

#: Where each role starts after signing in (also the password step's).
HOME = {
    Role.researcher: "/researcher",
    Role.provider: "/provider",
    Role.operator: "/operator",
    Role.authority: "/authority",
}

NEXT = "next"
MAX_LENGTH = 2000


def same_site_path(value: str) -> str | None:
    """``value`` if it is a path on this site, else ``None``."""
    if not value.startswith("/") or value.startswith("//") or len(value) > MAX_LENGTH:
        return None
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    return None if parts.scheme or parts.netloc else value


def sign_in_url(request: Request) -> str:
    """The sign-in page, told to come back to the page that was asked for."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/signin?{urlencode({NEXT: here})}"
