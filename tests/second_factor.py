"""The second factor in tests: an account's authenticator set up through the platform's own
enrolment, and real TOTP codes computed by pyotp from the secret the platform sealed.

A code is accepted once per time step (30 s), and the step before and after now are
accepted too; :func:`next_code` gives the earliest step the platform will still accept and
waits for the clock only when three sign-ins of one account fell in the same step.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.accounts.second_factor import requires_second_factor
from sandbox.accounts.secret_box import account_key, unseal
from sandbox.accounts.totp import (
    DRIFT_STEPS,
    TotpFactor,
    confirm_enrolment,
    factor_of,
    start_enrolment,
)
from sandbox.db.base import transaction
from sandbox.db.sealed import session_key_store
from sandbox.demo.seed import DEMO_TOTP_SECRET


def enrol_user(session: Session, user: User, keys_dir: Path) -> list[str]:
    """Set up ``user``'s authenticator as a person would (a secret, then its first code);
    the recovery codes. Nothing happens to an account that already has one."""
    if factor_of(session, user) is not None:
        return []
    enrolment = start_enrolment(session, user, keys_dir)
    now = datetime.now(UTC)
    codes = confirm_enrolment(
        session, user, keys_dir, pyotp.TOTP(enrolment.secret).at(now), now=now
    )
    assert codes, user.username
    return codes


def enrol(factory: sessionmaker[Session], keys_dir: Path, username: str) -> list[str]:
    """:func:`enrol_user` by name, in its own transaction."""
    with transaction(factory) as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None, username
        return enrol_user(session, user, keys_dir)


def secret_of(factory: sessionmaker[Session], keys_dir: Path, username: str) -> str:
    """The authenticator's secret, unsealed with the key store's key."""
    with transaction(factory) as session:
        user = session.scalar(select(User).where(User.username == username))
        factor = session.get(TotpFactor, user.id) if user else None
        assert factor is not None, f"{username} has no authenticator"
        key = account_key(session_key_store(session), keys_dir)
        return unseal(key, factor.secret_sealed, context=f"totp:{user.id}").decode()


def next_code(
    factory: sessionmaker[Session], keys_dir: Path, username: str, at: datetime | None = None
) -> str:
    """A code the platform accepts now (or at ``at``, a platform's stepped clock) for
    ``username``, who is enrolled first if need be."""
    enrol(factory, keys_dir, username)
    totp = pyotp.TOTP(secret_of(factory, keys_dir, username))
    with transaction(factory) as session:
        user = session.scalar(select(User).where(User.username == username))
        last = session.get(TotpFactor, user.id).last_step
    while True:
        current = totp.timecode(at or datetime.now(UTC))
        step = max(current - DRIFT_STEPS, last + 1)
        if step <= current + DRIFT_STEPS:
            return totp.generate_otp(step)
        assert at is None, f"{username} used every code up to {at}: move the clock on"
        time.sleep(totp.interval - time.time() % totp.interval + 0.05)


def app_of(client: object) -> object:
    """The app a test client drives: its own, or the one served at its base URL on a real
    socket (``tests.web.conftest.SERVED``)."""
    app = getattr(client, "app", None)
    if app is not None:
        return app
    from tests.web.conftest import SERVED

    return SERVED[str(client.base_url).rstrip("/")]  # type: ignore[attr-defined]


def app_code(app: object, username: str) -> str:
    """:func:`next_code` for the account on a running app (its database and key store)."""
    state = app.state  # type: ignore[attr-defined]
    clock = getattr(state, "clock", None)  # the platform's time, when a test steps it
    at = clock() if clock is not None else None
    return next_code(state.sessionmaker, state.settings.keys_dir, username, at)


def otp_field(app: object, username: str) -> dict[str, str]:
    """``{"otp": code}`` for ``/api/auth/token`` when the account needs a second factor."""
    state = app.state  # type: ignore[attr-defined]
    with transaction(state.sessionmaker) as session:
        user = session.scalar(select(User).where(User.username == username))
        needed = user is not None and requires_second_factor(session, user, state.settings)
    return {"otp": app_code(app, username)} if needed else {}


CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def through_second_step(client: TestClient, answer: Response, username: str) -> Response:
    """Follow the sign-in page's answer (a 303) through the code page when it leads there,
    as a person would: the page, then the authenticator's current code (or through setting
    one up, for an account that has none yet: then the recovery codes' page, a 200)."""
    to = urlsplit(answer.headers.get("location", ""))
    if answer.status_code == 303 and to.path == "/signin/enrol":
        return _enrolled_on_the_page(client)
    if answer.status_code != 303 or to.path != "/signin/code":
        return answer
    form = client.get(f"{to.path}?{to.query}" if to.query else to.path)
    assert form.status_code == 200, form.text
    data = {"code": app_code(app_of(client), username), "csrf_token": CSRF.findall(form.text)[-1]}
    carried = re.search(r'name="next" value="([^"]*)"', form.text)
    if carried:
        data["next"] = html.unescape(carried.group(1))
    return client.post("/signin/code", data=data, follow_redirects=False)


def _enrolled_on_the_page(client: TestClient) -> Response:
    """First sign-in of an account without an authenticator: copy the secret the page
    shows into "the app" (pyotp) and confirm with its code; the recovery codes' page."""
    page = client.get("/signin/enrol")
    assert page.status_code == 200, page.text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    data = {"code": pyotp.TOTP(secret).now(), "csrf_token": CSRF.findall(page.text)[-1]}
    done = client.post("/signin/enrol", data=data)
    assert done.status_code == 200 and 'id="recovery-codes"' in done.text, done.text
    return done


def browser_second_step(page, code: Callable[[], str]) -> None:  # type: ignore[no-untyped-def]
    """In the browser: after the password, type the authenticator's ``code()`` if asked."""
    page.wait_for_url(lambda url: urlsplit(url).path != "/signin")
    if urlsplit(page.url).path == "/signin/code":
        page.fill("input[name=code]", code())
        page.click("form.narrow button[type=submit]")


_DEMO_STEPS: dict[str, int] = {}


def demo_code(platform: str, username: str) -> str:
    """A code of the demo staff's printed secret (sandbox/demo/seed.py) that ``platform``
    has not yet accepted from ``username`` (the steps this test process used are kept).

    The current step comes first, then the next: an earlier step could fall out of the
    platform's drift window while a slow machine carries the code to it."""
    totp = pyotp.TOTP(DEMO_TOTP_SECRET)
    key = f"{platform} {username}"
    while True:
        current = totp.timecode(datetime.now(UTC))
        step = max(current, _DEMO_STEPS.get(key, 0) + 1)
        if step <= current + DRIFT_STEPS:
            _DEMO_STEPS[key] = step
            return totp.generate_otp(step)
        time.sleep(totp.interval - time.time() % totp.interval + 0.05)
