"""``sandbox query-worker``: serve one agreement's query service (one worker per agreement).

In deployment the worker runs in a container on the agreement's own network
with only that agreement's DuckDB file mounted read-only; it refuses tokens of
any other agreement (ARCHITECTURE, query service).

It serves TLS with ``--tls-cert``/``--tls-key``, a certificate for the address it listens
on (the agreement network's gateway), and workspaces verify it against the platform's CA.
On that port a plain-HTTP request gets no answer: the TLS handshake fails and the
connection is closed before any byte of it is read as a request. In production a worker
without a certificate is refused (rule ``tls-worker``): the workspace's token and every
result would cross the bridge in clear.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sandbox.agreements.service import get_agreement
from sandbox.cli.common import refusals_exit, unit_of_work
from sandbox.settings import get_settings


def query_worker(
    agreement: str = typer.Option(..., "--agreement", help="The agreement this worker serves."),
    port: int = typer.Option(..., "--port", help="TCP port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", help="Certificate (PEM chain) for the address it listens on."
    ),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="The certificate's key."),
) -> None:
    """Serve /qs for one agreement only, on its per-agreement DuckDB file."""
    import uvicorn

    from sandbox.apps.worker import create_worker_app

    settings = get_settings()
    if (tls_cert is None) != (tls_key is None):
        typer.echo("--tls-cert and --tls-key go together (rule tls-pair)", err=True)
        raise typer.Exit(2)
    if tls_cert is None and settings.environment == "production":
        typer.echo(
            "a query worker serves TLS in production (rule tls-worker): give --tls-cert and "
            f"--tls-key, a certificate for {host} issued by the CA workspaces trust "
            "(SANDBOX_TLS_CA)",
            err=True,
        )
        raise typer.Exit(2)
    with refusals_exit(2), unit_of_work() as session:
        get_agreement(session, agreement)  # refuse to start for an unknown agreement
    tls = {"ssl_certfile": str(tls_cert), "ssl_keyfile": str(tls_key)} if tls_cert else {}
    uvicorn.run(create_worker_app(settings, agreement), host=host, port=port, **tls)


def register(app: typer.Typer) -> None:
    """Add ``query-worker`` to the ``sandbox`` CLI."""
    app.command("query-worker")(query_worker)
