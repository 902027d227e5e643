"""The sign-in page's second step: the authenticator's code, or setting one up first.

After a right password, an account that needs a second factor
(sandbox/accounts/second_factor.py) gets a short-lived pending token
(sandbox/accounts/pending.py) instead of a session; the session cookie is set only
when the second step passes. An account without an authenticator sets one up here on
its first sign-in and is shown its recovery codes once. A signed-in researcher may set
one up from their account page; from then on they need it everywhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from sandbox.accounts.attempts import record_attempt
from sandbox.accounts.backoff import check_backoff
from sandbox.accounts.models import Role, User
from sandbox.accounts.pending import (
    PENDING_MINUTES,
    finish_pending,
    pending_user,
    start_pending,
)
from sandbox.accounts.second_factor import refusal
from sandbox.accounts.service import SESSION_HOURS, open_session
from sandbox.accounts.totp import (
    confirm_enrolment,
    factor_of,
    pending_enrolment,
    start_enrolment,
)
from sandbox.errors import PermissionDenied
from sandbox.http.client_address import client_address
from sandbox.http.deps import SESSION_COOKIE, DbDep, MaybeUserDep, SettingsDep
from sandbox.http.sign_in import request_time, second_step
from sandbox.settings import Settings
from sandbox.web.rendering import page_router, render, see_other, set_cookie
from sandbox.web.return_to import HOME, NEXT, same_site_path

router = page_router()

PENDING_COOKIE = "sandbox_signin_pending"
CODE_PAGE = "/signin/code"
ENROL_PAGE = "/signin/enrol"


def to_second_step(
    session: Session, request: Request, user: User, settings: Settings, next_page: str
) -> RedirectResponse:
    """After a right password: on to the code (or to setting up an authenticator)."""
    token = start_pending(session, user, now=request_time(request))
    page = CODE_PAGE if factor_of(session, user) is not None else ENROL_PAGE
    target = same_site_path(next_page)
    response = see_other(f"{page}?{NEXT}={target}" if target else page)
    set_cookie(response, settings, PENDING_COOKIE, token, max_age=PENDING_MINUTES * 60)
    return response


def _signed_in(response: Response, settings: Settings, token: str) -> None:
    set_cookie(response, settings, SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600)
    response.delete_cookie(PENDING_COOKIE, path="/")


def _pending(session: Session, request: Request) -> User:
    user = pending_user(session, request.cookies.get(PENDING_COOKIE, ""), now=request_time(request))
    if user is None:
        raise PermissionDenied(
            f"sign in with your password first (the second step waits {PENDING_MINUTES} minutes)",
            rule="auth",
        )
    return user


@router.get(CODE_PAGE)
def code_form(
    request: Request, db: DbDep, next_page: Annotated[str, Query(alias=NEXT)] = ""
) -> HTMLResponse:
    with db.tx() as session:
        _pending(session, request)
    return render(request, "signin_code.html", {"next": same_site_path(next_page)})


@router.post(CODE_PAGE)
def code_given(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    code: Annotated[str, Form(max_length=64)] = "",
    next_page: Annotated[str, Form(alias=NEXT)] = "",
) -> RedirectResponse:
    """A wrong code is a failed sign-in: recorded, and it slows the next attempt down."""
    with db.tx() as session:
        user = _pending(session, request)
        problem = second_step(session, request, user, code, channel="web")
        if problem is None:
            finish_pending(session, request.cookies.get(PENDING_COOKIE, ""))
            token = open_session(session, user, {"channel": "web"})
            home = HOME[Role(user.role)]
    if problem is not None:  # the failure is committed above: refuse only now
        raise problem
    response = see_other(same_site_path(next_page) or home)
    _signed_in(response, settings, token)
    return response


def _enrolling(session: Session, request: Request, user: User | None) -> tuple[User, bool]:
    """Who sets up an authenticator: the pending sign-in, else the signed-in researcher."""
    if request.cookies.get(PENDING_COOKIE):
        return _pending(session, request), True
    if user is None:
        raise PermissionDenied("sign in first", rule="auth")
    return user, False


@router.get(ENROL_PAGE)
def enrol_form(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    user: MaybeUserDep,
    next_page: Annotated[str, Query(alias=NEXT)] = "",
) -> HTMLResponse:
    """A secret to copy into an authenticator app (the one under way, if any)."""
    with db.tx() as session:
        who, _ = _enrolling(session, request, user)
        enrolment = pending_enrolment(session, who, settings.keys_dir) or start_enrolment(
            session, who, settings.keys_dir
        )
    secret = " ".join(enrolment.secret[i : i + 4] for i in range(0, len(enrolment.secret), 4))
    return render(
        request,
        "signin_enrol.html",
        {"secret": secret, "uri": enrolment.uri, "next": same_site_path(next_page)},
    )


@router.post(ENROL_PAGE)
def enrol_confirmed(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    user: MaybeUserDep,
    code: Annotated[str, Form(max_length=64)] = "",
    next_page: Annotated[str, Form(alias=NEXT)] = "",
) -> HTMLResponse:
    """The first code proves the app holds the secret; the recovery codes are shown once.
    A wrong code is a failed sign-in, as on the code page."""
    address = client_address(request, settings.trusted_proxies)
    now = request_time(request)
    with db.tx() as session:
        who, signing_in = _enrolling(session, request, user)
        check_backoff(session, username=who.username, address=address, now=now)
        codes = confirm_enrolment(session, who, settings.keys_dir, code, now=now)
        if codes is None or signing_in:  # setting one up while signed in is no sign-in
            record_attempt(
                session,
                username=who.username,
                address=address,
                channel="web",
                succeeded=codes is not None,
                at=now,
                factor="totp",
            )
        if codes is not None and signing_in:
            finish_pending(session, request.cookies.get(PENDING_COOKIE, ""))
            token = open_session(session, who, {"channel": "web"})
        onward = same_site_path(next_page) or (HOME[Role(who.role)] if signing_in else "/account")
    if codes is None:  # the failure is committed above: refuse only now
        raise refusal("mfa-code")
    response = render(request, "recovery_codes.html", {"codes": codes, "onward": onward})
    if signing_in:
        _signed_in(response, settings, token)
    return response
