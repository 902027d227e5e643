"""Rendering pages: the template environment, cookies, refusals as error pages.

Every page router is made by :func:`page_router`, which gives it three things
no route can forget: the signed-in user on ``request.state`` (for the menu),
the CSRF check on every state-changing request, and a route class that turns
any ``SandboxError`` into an error page naming the rule and the article (or, for
an anonymous visit to a page that needs an account, into a way to sign in and back;
or, for a form that says so, into its page again, filled in: ``form_refusal.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.types import Message

from sandbox.clock import today
from sandbox.db.base import read_only
from sandbox.errors import SandboxError
from sandbox.http.deps import DbDep, MaybeUserDep
from sandbox.http.http_errors import http_headers, http_status
from sandbox.identity.providers import registered_names
from sandbox.input_limits import input_refusal
from sandbox.notifications.service import list_notifications
from sandbox.refusal_text import say, say_article
from sandbox.settings import Settings
from sandbox.web.csrf import CSRF_COOKIE, csrf_protect, new_nonce, request_token
from sandbox.web.form_refusal import STATE_KEY, FormView, Refusal, form_spec, refusal_of
from sandbox.web.i18n import language, terms, translator
from sandbox.web.return_to import same_site_path, sign_in_url
from sandbox.workspaces.availability import NOT_ISOLATED, NOT_ISOLATED_DETAIL

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(not_isolated=NOT_ISOLATED, not_isolated_detail=NOT_ISOLATED_DETAIL)


def data(value: object) -> Markup:
    """Data, names and identifiers on a page (a title, a person's name, free text): marked
    ``translate="no"``, HTML's attribute for text that is not the interface's own words."""
    if value is None or value == "":
        return Markup("")
    return Markup('<span translate="no">{}</span>').format(value)


def organisation(slug: str, names: Mapping[str, str]) -> Markup:
    """A provider by its registered full name (a name is data: the page's language does not
    change it); one the register does not hold by its short name, as an identifier."""
    name = names.get(slug)
    if name is None:
        return Markup('<code class="provider">{}</code>').format(slug)
    return Markup(
        '<span class="provider" data-provider="{}" lang="zh" translate="no">{}</span>'
    ).format(slug, name)


def _organisations(request: Request) -> Callable[[str], Markup]:
    """``org(slug)`` for a page: the register is read once, when the page first names one,
    without a write lock (the page's own transaction may hold it)."""
    names: dict[str, str] | None = None

    def shown(slug: str) -> Markup:
        nonlocal names
        if names is None:
            with read_only(request.app.state.sessionmaker) as session:
                names = registered_names(session)
        return organisation(slug, names)

    return shown


def backticks(text: str) -> Markup:
    """Plain text in which what is quoted in backticks (a command, a call, a file name) is
    shown as code."""
    parts = str(Markup.escape(text)).split("`")
    return Markup("".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)))


templates.env.filters.update(data=data, backticks=backticks)


def set_cookie(
    response: Response, settings: Settings, name: str, value: str, max_age: int | None = None
) -> None:
    """Every cookie the pages set: httponly, SameSite=Lax, Secure in production."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.environment == "production",
        path="/",
    )


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """A page with the common context: user, language, translators (``t`` for the page's
    words, ``say`` for a refusal by its rule, ``cite`` for an article), CSRF token, today,
    and ``refill(form_id)``, a form's values and problems after a refusal."""
    nonce = request.cookies.get(CSRF_COOKIE) or new_nonce()
    lang = language(request)
    refused = getattr(request.state, STATE_KEY, None)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "user": getattr(request.state, "user", None),
            "unread": getattr(request.state, "unread", 0),
            "lang": lang,
            "t": translator(lang),
            "term": terms(lang),
            "say": lambda rule, message: say(rule, message, lang),
            "cite": lambda article: cite(article, lang),
            "org": _organisations(request),
            "refill": lambda form, error=None: FormView(refused, form, lang, error),
            "csrf_token": request_token(request, nonce),
            "today": today(),
            **(context or {}),
        },
        status_code=status_code,
    )
    if CSRF_COOKIE not in request.cookies:
        set_cookie(response, request.app.state.settings, CSRF_COOKIE, nonce)
    return response


def cite(article: str, lang: str) -> Markup:
    """An article as a person reads it (上海条例第12条) beside the citation the API and the
    record give (``Shanghai Art.12``), which stays on the page as the article's identifier."""
    named = say_article(article, lang)
    if named == article:
        return Markup('<span class="article">{}</span>').format(article)
    return Markup('{} <code class="article">{}</code>').format(named, article)


def see_other(url: str) -> RedirectResponse:
    """After a successful POST: redirect so a reload does not repeat it. URLs carry ids only."""
    return RedirectResponse(url, status_code=303)


def back_url(request: Request) -> str:
    """Where "back" goes: the referring page if it is ours (with its query, so a failed
    sign-in goes back to a form that still knows where to return), else the home page.
    Ours means this host and a path that is one here: ``http://this-host//elsewhere``
    is not."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc == request.url.netloc:
        here = referer.path + (f"?{referer.query}" if referer.query else "")
        return same_site_path(here) or "/"
    return "/"


def error_page(request: Request, exc: SandboxError) -> HTMLResponse:
    """A refusal: what was wrong, the rule and the article; never a data value."""
    response = render(
        request, "error.html", {"error": exc, "back": back_url(request)}, http_status(exc)
    )
    response.headers.update(http_headers(exc))
    return response


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class PageRoute(APIRoute):
    """A route whose refusals are rendered as error pages instead of JSON; an anonymous
    GET of a page that needs an account is sent to sign in and come back; a refused form
    marked with ``shows_again`` comes back on its page, filled in."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        spec = form_spec(self.endpoint)

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SandboxError as exc:
                if exc.rule == "auth" and request.method == "GET":
                    return see_other(sign_in_url(request))
                error, errors = exc, None
            except RequestValidationError as exc:
                error, errors = input_refusal(exc.errors()), exc.errors()
            if spec is not None and request.method == "POST" and error.rule != "csrf":
                form = await request.form()
                refusal = refusal_of(spec, request.path_params, form, error, errors)
                if refusal is not None:
                    return await _form_again(request, refusal)
            return error_page(request, error)

        return page_handler


async def _form_again(request: Request, refusal: Refusal) -> Response:
    """The form's page, asked for again through its own GET route (with its checks of who
    may see it) and told of the refusal; with the refusal's status when the page is shown."""
    scope = {
        **request.scope,
        "method": "GET",
        "path": refusal.path,
        "raw_path": quote(refusal.path).encode(),
        "query_string": refusal.query.encode(),
        "state": {**request.scope.get("state", {}), STATE_KEY: refusal},
    }
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await request.app.router(scope, _no_body, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    response = Response(b"".join(m.get("body", b"") for m in sent[1:]), start["status"])
    response.raw_headers = list(start["headers"])
    if start["status"] == 200:
        response.status_code = http_status(refusal.error)
        response.headers.update(http_headers(refusal.error))
    return response


def remember_user(request: Request, user: MaybeUserDep, db: DbDep) -> None:
    """Keep the signed-in user and their unread notices' count for the page menu."""
    request.state.user = user
    if user is not None:
        with db.tx() as session:
            request.state.unread = len(list_notifications(session, user, unread_only=True))


def page_router(prefix: str = "") -> APIRouter:
    return APIRouter(
        prefix=prefix,
        route_class=PageRoute,
        include_in_schema=False,
        default_response_class=HTMLResponse,
        dependencies=[Depends(remember_user), Depends(csrf_protect)],
    )
