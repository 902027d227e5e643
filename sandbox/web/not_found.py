"""The page for an address with no page: called "not found" in the interface language,
not a refusal. API clients (anything not asking for HTML) keep FastAPI's JSON 404."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from sandbox.http.deps import get_db, optional_user
from sandbox.web.rendering import back_url, remember_user, render


def _page(request: Request) -> Response:
    db = get_db(request)
    remember_user(request, optional_user(request, db), db)  # the menu as on any page
    return render(
        request, "not_found.html", {"path": request.url.path, "back": back_url(request)}, 404
    )


async def not_found_page(request: Request, exc: Exception) -> Response:
    """A 404 from the router as a page for a browser; every other HTTP error unchanged."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and "text/html" in request.headers.get("accept", ""):
        return await run_in_threadpool(_page, request)
    return await http_exception_handler(request, exc)
