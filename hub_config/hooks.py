"""Spawner hooks: a workspace starts only with the control plane's authorization.

The server name is the agreement id in lower case, so each (researcher, agreement) pair has its
own named server, network, token and home volume.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import docker
import httpx
from tornado import web

from hub_config.control_plane import ControlPlane, SpawnAuthorization, SpawnRefused
from sandbox.workspaces import hardening, network
from sandbox.workspaces.names import network_name, server_name


@dataclass(frozen=True)
class WorkspacePolicy:
    """What every workspace gets, whoever starts it."""

    query_service_url: str
    hub_api_port: int
    limits: hardening.WorkspaceLimits
    #: Seconds to wait for the agreement's query service (0: start without asking).
    query_service_wait: float = 0
    #: The CA file (on the host) an ``https`` query service's certificate is verified
    #: against; mounted read-only into the workspace at :data:`hardening.CA_PATH`.
    tls_ca: str | None = None


def _on_gateway(url: str, gateway: str) -> str:
    """``url`` with its host replaced by the network's gateway (the host, as seen inside)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return urlunsplit(parts._replace(netloc=f"{gateway}:{port}"))


async def authorize(spawner, control_plane: ControlPlane) -> SpawnAuthorization:
    """The control plane's yes to this researcher on the agreement the server is named
    after, or the researcher's 403 with its reason."""
    if not spawner.name:
        raise web.HTTPError(403, "Open a workspace from one of your agreements.")
    try:
        grant = await control_plane.authorize_spawn(spawner.user.name, spawner.name)
    except SpawnRefused as refused:
        raise web.HTTPError(403, str(refused)) from refused
    if server_name(grant.agreement_id) != spawner.name:
        raise web.HTTPError(500, "The control plane answered for another agreement.")
    return grant


def _verify(ca: str | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=ca) if ca else True


async def query_service_answers(url: str, ca: str | None = None) -> bool:
    """Whether the query service at ``url`` answers now (any HTTP status will do); over
    ``https``, with a certificate that verifies against ``ca``."""
    try:
        async with httpx.AsyncClient(timeout=2, verify=_verify(ca)) as client:
            await client.get(f"{url.rstrip('/')}/agreement")
    except httpx.TransportError:
        return False
    return True


async def wait_for_query_service(
    find_url: Callable[[], str | None], limit: float, agreement_id: str, ca: str | None = None
) -> str:
    """The agreement's query service URL once it answers; the spawn is refused (503) when it
    has not after ``limit`` seconds: a workspace whose queries cannot reach the data, and
    whose start cannot fetch the welcome notebook, helps nobody. ``find_url`` is asked again
    each time (``None``: no worker known yet)."""
    deadline = time.monotonic() + limit
    while True:
        url = find_url()
        if url and await query_service_answers(url, ca):
            return url
        if time.monotonic() >= deadline:
            raise web.HTTPError(
                503,
                f"The query service of agreement {agreement_id} does not answer"
                f"{f' at {url}' if url else ''}: the operator must start its query worker "
                "(`sandbox run` starts it within seconds of provisioning). Try again shortly.",
            )
        await asyncio.sleep(0.3)


def workspace_environment(
    grant: SpawnAuthorization, query_url: str, ca: str | None = None
) -> dict[str, str]:
    """What the notebook client reads: the agreement, its query service and the token, and
    the CA file (as the workspace sees it) the service's certificate is verified against."""
    environment = {
        "SANDBOX_AGREEMENT_ID": grant.agreement_id,
        "SANDBOX_QUERY_URL": query_url,
        "SANDBOX_TOKEN": grant.token,
        "SANDBOX_TOKEN_EXPIRES_AT": grant.expires_at.isoformat(),
    }
    if ca:
        environment["SANDBOX_QUERY_CA"] = ca
    return environment


async def pre_spawn(spawner, *, control_plane: ControlPlane, policy: WorkspacePolicy) -> None:
    """Refuse unless the control plane authorizes this researcher on this agreement now;
    then put the workspace on the agreement's confined network with its token."""
    username = spawner.user.name
    grant = await authorize(spawner, control_plane)
    agreement_id = grant.agreement_id
    if grant.network_name != network_name(agreement_id):
        raise web.HTTPError(500, "The control plane answered for another agreement.")

    qs_port = urlsplit(policy.query_service_url).port or 80
    client = docker.from_env()
    net = await asyncio.to_thread(
        network.provision, client, agreement_id, [qs_port, policy.hub_api_port]
    )
    home = await asyncio.to_thread(network.ensure_home_volume, client, username, agreement_id)
    project = await asyncio.to_thread(network.ensure_project_volume, client, agreement_id)

    spawner.network_name = net.name
    spawner.hub_connect_url = f"http://{net.gateway}:{policy.hub_api_port}"
    spawner.extra_host_config = hardening.host_config(
        policy.limits,
        network=net.name,
        home_volume=home,
        dns=net.gateway,
        project_volume=project,
        ca_file=policy.tls_ca,
    )
    spawner.extra_create_kwargs = hardening.create_kwargs(
        agreement_id=agreement_id, researcher=username
    )
    query_url = _on_gateway(policy.query_service_url, net.gateway)
    if policy.query_service_wait:
        await wait_for_query_service(
            lambda: query_url, policy.query_service_wait, agreement_id, policy.tls_ca
        )
    ca = hardening.CA_PATH if policy.tls_ca else None  # the mounted file, as inside sees it
    spawner.environment = {
        **spawner.environment,
        **hardening.SERVER_ENVIRONMENT,
        **workspace_environment(grant, query_url, ca),
    }
