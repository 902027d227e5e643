"""A sign-in over HTTP, the same for the sign-in page, ``/api/auth/token`` and the hub: the
client's address (trusted proxies only), the backoff, the record of the attempt, and the
second factor for accounts that need one (sandbox/accounts/second_factor.py).

The time is ``app.state.clock()`` when the app holds one (tests step it to watch the
backoff grow without waiting), else now.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy.orm import Session

from sandbox.accounts.backoff import authenticate_with_backoff
from sandbox.accounts.models import User
from sandbox.accounts.second_factor import present_second_factor, requires_second_factor
from sandbox.errors import PolicyViolation, TooManyAttempts
from sandbox.http import metrics
from sandbox.http.client_address import client_address


def request_time(request: Request) -> datetime:
    """Now, in UTC (or the app's clock)."""
    clock = getattr(request.app.state, "clock", None)
    return (clock() if clock is not None else datetime.now(UTC)).astimezone(UTC)


def sign_in(
    session: Session,
    request: Request,
    username: str,
    password: str,
    *,
    channel: str,
    address: str | None = None,
) -> User | None:
    """The user, or ``None`` for a wrong name or password (recorded in ``session``; the
    caller commits it and then refuses). A user who needs a second factor is not signed in
    yet: :func:`second_step` (or the web's second page) must follow. ``address`` overrides
    the request's own (the hub says whose sign-in it forwards)."""
    settings = request.app.state.settings
    if address is None:
        address = client_address(request, settings.trusted_proxies)
    try:
        return authenticate_with_backoff(
            session,
            username,
            password,
            address=address,
            channel=channel,
            now=request_time(request),
            second_factor_follows=lambda user: requires_second_factor(session, user, settings),
        )
    except TooManyAttempts as refusal:
        metrics.sign_in_throttled(channel, refusal.rule)
        raise


def second_step(
    session: Session,
    request: Request,
    user: User,
    code: str,
    *,
    channel: str,
    address: str | None = None,
) -> PolicyViolation | None:
    """After ``user``'s right password: ``None`` if they need no second factor or ``code``
    is one, else the refusal to raise after the caller commits the recorded failure."""
    settings = request.app.state.settings
    if not requires_second_factor(session, user, settings):
        return None
    if address is None:
        address = client_address(request, settings.trusted_proxies)
    try:
        return present_second_factor(
            session,
            user,
            code,
            keys_dir=settings.keys_dir,
            address=address,
            channel=channel,
            now=request_time(request),
        )
    except TooManyAttempts as refusal:
        metrics.sign_in_throttled(channel, refusal.rule)
        raise
