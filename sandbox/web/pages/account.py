"""Sign in and out, one's own account (with its real-name status), and the language switch.

Signing in exchanges a password for the same bearer token the API issues, kept
in an httponly session cookie that ``sandbox.http.deps.optional_user`` reads.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from sandbox.accounts.models import Role
from sandbox.accounts.second_factor import requires_second_factor
from sandbox.accounts.service import SESSION_HOURS, open_session, revoke_token
from sandbox.accounts.totp import factor_of
from sandbox.errors import PermissionDenied
from sandbox.http.deps import SESSION_COOKIE, DbDep, SettingsDep, UserDep
from sandbox.http.sign_in import sign_in
from sandbox.identity.organisations import REAL_NAME_ARTICLE, identity_of
from sandbox.web.form_refusal import shows_again
from sandbox.web.i18n import LANG_COOKIE, LANGUAGES
from sandbox.web.pages.second_factor import to_second_step
from sandbox.web.rendering import back_url, page_router, render, see_other, set_cookie
from sandbox.web.return_to import HOME, NEXT, same_site_path

router = page_router()


@router.get("/signin")
def signin_form(
    request: Request, next_page: Annotated[str, Query(alias=NEXT)] = ""
) -> HTMLResponse:
    return render(request, "signin.html", {"next": same_site_path(next_page)})


@router.post("/signin")
@shows_again(
    "/signin", form="signin-form", query=(NEXT,),
    rules={"auth": None, "sign-in-backoff-account": None, "sign-in-backoff-address": None},
)  # fmt: skip
def signin(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_page: Annotated[str, Form(alias=NEXT)] = "",
) -> RedirectResponse:
    """Failures are recorded and slow the next attempt down: the page then says how long
    to wait (429, sandbox/accounts/backoff.py), on the form again with the username kept
    (never the password). An account with a second factor goes on to
    it (sandbox/web/pages/second_factor.py). Success goes back to the page that sent the
    user to sign in, if it is one of ours, else to the role's home."""
    with db.tx() as session:
        user = sign_in(session, request, username, password, channel="web")
        if user is not None and requires_second_factor(session, user, settings):
            return to_second_step(session, request, user, settings, next_page)
        if user is not None:
            token = open_session(session, user, {"channel": "web"})
            home = HOME[Role(user.role)]
    if user is None:  # the failure is committed above: refuse only now
        raise PermissionDenied("unknown user or wrong password", rule="auth")
    response = see_other(same_site_path(next_page) or home)
    set_cookie(response, settings, SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600)
    return response


@router.post("/signout")
def signout(request: Request, db: DbDep) -> RedirectResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with db.tx() as session:
            revoke_token(session, token)
    response = see_other("/catalogue")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account")
def account(request: Request, db: DbDep, user: UserDep) -> HTMLResponse:
    """Who the platform takes you for, whether your real name is verified (Wuxi Art.6) and
    whether you sign in with a second factor (a researcher may set one up here)."""
    with db.tx() as session:
        identity = identity_of(session, user)
        return render(
            request,
            "account.html",
            {
                "identity": identity,
                "real_name_article": REAL_NAME_ARTICLE,
                "has_authenticator": factor_of(session, user) is not None,
            },
        )


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, settings: SettingsDep) -> RedirectResponse:
    response = see_other(back_url(request))
    if code in LANGUAGES:
        set_cookie(response, settings, LANG_COOKIE, code, max_age=365 * 86400)
    return response
