"""``sandbox serve|demo|run|user-add``: start the platform and seed the demo."""

from __future__ import annotations

import getpass
import os
import socket

import typer

from sandbox.accounts.models import Role
from sandbox.accounts.service import create_user
from sandbox.audit.anchor_timer import CheckpointTimer
from sandbox.cli import processes
from sandbox.cli.common import refusals_exit, unit_of_work
from sandbox.cli.hub import maybe_start_workspaces
from sandbox.cli.stopping import stop_on_signals
from sandbox.demo.seed import DEMO_PASSWORD, DEMO_TOTP_SECRET, is_seeded, seed_demo
from sandbox.duties.timer import DutyTimer
from sandbox.settings import Settings, get_settings
from sandbox.tls import development
from sandbox.tls.web import RedirectListener, plain_http_refused, uvicorn_tls
from sandbox.workcalendar import calendar_from_settings


def serve(host: str | None = None, port: int | None = None) -> None:
    """Serve the platform's web app and API with uvicorn; SIGTERM or SIGINT stops it
    cleanly (the duties timer finishes its run)."""
    with stop_on_signals():
        _serve(get_settings(), host=host, port=port)


def _serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Serve, with the recurring duties on a timer beside the server unless switched off;
    production refuses plain HTTP except on loopback behind a trusted proxy."""
    import uvicorn

    from sandbox.apps.platform import create_app

    host, port = host or settings.host, port or settings.port
    if why := plain_http_refused(settings, host):
        typer.echo(why, err=True)
        raise typer.Exit(2)
    timer = DutyTimer(settings, settings.duties_interval) if settings.duties_interval else None
    if timer is not None:
        every = settings.duties_interval
        typer.echo(f"duties:    lifecycle, notices, backups, checkpoint every {every} s")
        timer.start()
    anchor = CheckpointTimer.from_settings(settings)  # signs the record's head, and on stop
    if anchor is not None:
        anchor.start()
    redirect = None
    try:
        if settings.http_redirect_port:  # plain HTTP answers with a redirect to HTTPS only
            redirect = RedirectListener(host, settings.http_redirect_port, port)
            redirect.start()
            typer.echo(f"HTTP:      port {settings.http_redirect_port} redirects to HTTPS")
        # proxy_headers off: the client address is the socket peer unless the operator
        # names trusted proxies (SANDBOX_TRUSTED_PROXIES, sandbox/http/client_address.py).
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            proxy_headers=False,
            **uvicorn_tls(settings),
        )
    finally:
        if redirect is not None:
            redirect.stop()
        if timer is not None:
            timer.stop()
        if anchor is not None:
            anchor.stop()


def demo() -> None:
    """Seed the synthetic demo into an empty platform (development only)."""
    settings = get_settings()
    with refusals_exit(), unit_of_work() as session:
        if is_seeded(session):
            typer.echo("the platform already has accounts; demo not seeded")
            return
        accounts = seed_demo(session, settings, calendar_from_settings(settings))
    typer.echo(f"demo seeded; every demo account's password is {DEMO_PASSWORD!r}")
    typer.echo(
        "providers, the operator and the authority also give a code of the demo's "
        f"authenticator secret {DEMO_TOTP_SECRET} (add it to a TOTP app, or run: python -c "
        f"\"import pyotp; print(pyotp.TOTP('{DEMO_TOTP_SECRET}').now())\")"
    )
    for a in accounts:
        typer.echo(f"  {a.username:<28} {a.role.value:<11} {a.organisation}")


def run(
    tls: bool = typer.Option(
        False,
        "--tls",
        help="Serve HTTPS with a development certificate under <data dir>/tls, made once "
        "by a development CA that is printed with how to trust it (make run does this). "
        "SANDBOX_TLS_CERT/KEY, when set, are used instead.",
    ),
) -> None:
    """What `make run` does: seed the demo on first run, print addresses and logins, serve.

    SIGTERM or SIGINT stops it cleanly: the hub (which stops its proxy, culler and
    servers), the query workers, anything of theirs that outlived them, and the hub API's
    firewall chain; no process of it remains.
    """
    settings = get_settings()
    if settings.environment == "production":
        typer.echo("`sandbox run` is the development entry point; use `sandbox serve`", err=True)
        raise typer.Exit(2)
    if tls and settings.tls_cert is None:
        settings = with_development_tls(settings)
    with stop_on_signals():
        processes.become_subreaper()  # a proxy whose hub died stays ours to stop
        try:
            _run(settings)
        finally:
            processes.end(processes.descendants(os.getpid()))


def _certificate_hosts(settings: Settings) -> list[str]:
    """What the platform's development certificate names: its host (this machine's name
    when it listens everywhere) and loopback."""
    every = settings.host in ("0.0.0.0", "::", "")
    return [socket.gethostname() if every else settings.host, "localhost", "127.0.0.1", "::1"]


def with_development_tls(settings: Settings) -> Settings:
    """``settings`` serving HTTPS with the development certificate (made once under
    ``<data_dir>/tls``, reused afterwards), its CA the one clients verify against; print
    where the CA is and how to trust it."""
    directory = settings.data_dir / "tls"
    try:
        issued = development.server_certificate(directory, "platform", _certificate_hosts(settings))
    except development.CertificateRefused as refused:
        typer.echo(str(refused), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"TLS:       development CA {issued.ca.resolve()} (not for production); trust it:")
    for line in development.trust_instructions(issued.ca):
        typer.echo(f"           {line}")
    return settings.model_copy(
        update={
            "tls_cert": issued.cert.resolve(),
            "tls_key": issued.key.resolve(),
            "tls_ca": issued.ca.resolve(),
        }
    )


def _run(settings: Settings) -> None:
    demo()
    base = f"{settings.scheme}://{settings.host}:{settings.port}"
    typer.echo(f"\nplatform:  {base}/\nAPI docs:  {base}/docs\ndata dir:  {settings.data_dir}")
    # The hub and query workers, in Docker or as development workspaces (sandbox/cli/hub.py);
    # the platform then holds the generated hub tokens, so revocation stops running servers.
    served, workspaces = maybe_start_workspaces(settings)
    try:
        _serve(served)
    finally:
        if workspaces:
            workspaces.stop()
            typer.echo(
                "workspaces:  stopped (hub, proxy, culler, query workers; firewall chain removed)"
            )


def user_add(
    username: str,
    role: Role,
    display_name: str = typer.Option(..., help="Real name (Wuxi Art.6)."),
    organisation: str = typer.Option("", help="Provider name or the researcher's organisation."),
    email: str = typer.Option(""),
) -> None:
    """Create an account; the password is asked for, never passed on the command line."""
    password = getpass.getpass("password: ")
    with refusals_exit(), unit_of_work() as session:
        create_user(
            session=session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            organisation=organisation,
            email=email,
            actor="cli",
        )
    typer.echo(f"user {username} created")


def register(app: typer.Typer) -> None:
    for command in (serve, demo, run):
        app.command(command.__name__)(command)
    app.command("user-add")(user_add)
