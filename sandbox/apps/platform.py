"""The platform's FastAPI application: API routers, error handling, startup."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sandbox.api.docs_pages import install_docs
from sandbox.api.routes import (
    agreements,
    alerts,
    applications,
    audit,
    auth,
    backups,
    catalog,
    catalog_reviews,
    exports,
    hub,
    imports,
    notifications,
    oidc,
    organisations,
    oversight,
    oversight_duties,
    preview,
    query_exports,
    query_service,
    sign_ins,
    statistics,
    workspaces,
)
from sandbox.api.routes.metrics import install_metrics
from sandbox.apps.pages import install_pages
from sandbox.audit.outbox import link_pending
from sandbox.db.base import make_sessionmaker
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import field_keys, platform_engine
from sandbox.errors import SandboxError
from sandbox.http.http_errors import http_headers, http_status
from sandbox.http.metrics import PlatformCollector
from sandbox.http.request_checks import check_request, refuse_invalid_input
from sandbox.settings import Settings, get_settings
from sandbox.tls.web import install_https
from sandbox.workcalendar import calendar_from_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app on a database brought to the current schema; every route runs the
    request checks (ids in range, clean text) first."""
    settings = settings or get_settings()
    ensure_schema(settings.db_url, field_keys(settings))
    engine = platform_engine(settings)
    app = FastAPI(
        title="Data sandbox for conditional-access public data",
        description="有条件开放公共数据沙箱: catalogue, applications, agreements, audit record.",
        version="0.1.0",
        dependencies=[Depends(check_request)],
        docs_url=None,  # install_docs serves them from this origin
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    link_pending(app.state.sessionmaker)  # what a killed process committed and did not link
    app.state.calendar = calendar_from_settings(settings)

    @app.exception_handler(SandboxError)
    async def _refusal(_request: Request, exc: SandboxError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), http_status(exc), headers=http_headers(exc))

    app.add_exception_handler(RequestValidationError, refuse_invalid_input)

    for module in (
        auth,
        catalog,
        catalog_reviews,
        applications,
        agreements,
        oversight,
        oversight_duties,
        hub,
        notifications,
        audit,
        backups,
        sign_ins,
        statistics,
        workspaces,
        organisations,
        oidc,
        query_service,
        alerts,
        exports,
        imports,
        query_exports,
    ):
        app.include_router(module.router)
    app.include_router(agreements.lifecycle_router)
    app.include_router(preview.router)
    install_pages(app)
    install_docs(app)
    install_metrics(app, PlatformCollector(app.state.sessionmaker, settings))
    install_https(app, settings)  # HSTS in production; trusted proxies' scheme and client
    return app
