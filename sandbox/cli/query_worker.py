"""``sandbox query-worker``: serve one agreement's query service (one worker per agreement).

In deployment the worker runs in a container on the agreement's own network
with only that agreement's DuckDB file mounted read-only; it refuses tokens of
any other agreement (ARCHITECTURE, query service).
"""

from __future__ import annotations

import typer

from sandbox.agreements.service import get_agreement
from sandbox.cli.common import refusals_exit, unit_of_work
from sandbox.settings import get_settings


def query_worker(
    agreement: str = typer.Option(..., "--agreement", help="The agreement this worker serves."),
    port: int = typer.Option(..., "--port", help="TCP port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
) -> None:
    """Serve /qs for one agreement only, on its per-agreement DuckDB file."""
    import uvicorn

    from query_guard.service.worker import create_worker_app

    settings = get_settings()
    with refusals_exit(2), unit_of_work() as session:
        get_agreement(session, agreement)  # refuse to start for an unknown agreement
    uvicorn.run(create_worker_app(settings, agreement), host=host, port=port)


def register(app: typer.Typer) -> None:
    """Add ``query-worker`` to the ``sandbox`` CLI."""
    app.command("query-worker")(query_worker)
