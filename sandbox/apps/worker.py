"""A query worker: the query service for one agreement, in its own process.

In deployment one worker runs per active agreement, on that agreement's
network, with only that agreement's DuckDB file mounted read-only: a DuckDB
escape in it exposes nothing of any other agreement (ARCHITECTURE, query
service). It refuses tokens of every other agreement.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox.api.routes import query_exports
from sandbox.api.routes.metrics import install_metrics
from sandbox.api.routes.query_service import QueryService, router
from sandbox.audit.faults import trace_commits
from sandbox.audit.outbox import link_pending
from sandbox.db.base import make_sessionmaker
from sandbox.db.sealed import platform_engine
from sandbox.errors import SandboxError
from sandbox.http.http_errors import http_status
from sandbox.settings import Settings


async def refusal(_request: Request, exc: Exception) -> JSONResponse:
    """Every refusal as ``{"error", "rule", "article", ...}`` with its status code."""
    assert isinstance(exc, SandboxError)
    return JSONResponse(status_code=http_status(exc), content=exc.to_dict())


def create_worker_app(settings: Settings, agreement_id: str) -> FastAPI:
    """The ``/qs`` routes serving ``agreement_id`` only, on the platform's database."""
    app = FastAPI(title=f"Query worker for agreement {agreement_id}", version="0.1.0")
    engine = platform_engine(settings)
    trace_commits(engine)
    sessions = make_sessionmaker(engine)
    link_pending(sessions)  # what a killed worker committed and did not link
    app.state.settings = settings
    app.state.sessionmaker = sessions
    app.state.query_service = QueryService(settings, sessions, only_agreement=agreement_id)
    app.add_exception_handler(SandboxError, refusal)
    app.include_router(router)
    app.include_router(query_exports.router)
    install_metrics(app)
    return app
