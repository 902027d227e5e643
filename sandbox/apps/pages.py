"""The pages (:mod:`sandbox.web.pages`) mounted on the platform's application: every page
router, the static files, the favicon and the not-found page, in one place."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from sandbox.web import oidc
from sandbox.web.not_found import not_found_page
from sandbox.web.pages import (
    account,
    alerts,
    authority,
    backups,
    catalog_review,
    checkpoints,
    export_review,
    exports,
    guide,
    keys,
    notifications,
    operator,
    organisations,
    oversight,
    previews,
    provider,
    public,
    publish,
    researcher,
    rules,
    second_factor,
    sign_ins,
    statistics,
)
from sandbox.web.rendering import HERE


def install_pages(app: FastAPI) -> None:
    """Mount every page router, ``/static`` and ``/favicon.ico`` on ``app``."""
    for module in (
        public, account, researcher, exports, provider, publish, export_review, operator,
        authority, alerts, keys, statistics, oversight, catalog_review, notifications,
        organisations, previews, backups, sign_ins, checkpoints, guide, second_factor, rules,
        oidc,
    ):  # fmt: skip
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_api_route("/favicon.ico", favicon, include_in_schema=False)
    app.add_exception_handler(HTTPException, not_found_page)


def favicon() -> FileResponse:
    """Browsers ask for /favicon.ico whatever the page links (e.g. for the API's JSON)."""
    return FileResponse(HERE / "static" / "favicon.ico", media_type="image/vnd.microsoft.icon")
