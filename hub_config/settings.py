"""The hub's settings from the environment (prefix ``SANDBOX_HUB_``).

Secrets come from the environment, never from files in images; none of them
reaches a workspace (the spawner's env is an allowlist).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from sandbox.workspaces.limits import WorkspaceLimitSettings


class HubSettings(WorkspaceLimitSettings):
    """The hub's settings; the workspace limits (memory, cpus, pids, idle_timeout) are
    inherited, so the pages show what the spawner applies."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_HUB_", extra="ignore")

    #: Where researchers open the hub (configurable-http-proxy's public address).
    public_url: str = "http://127.0.0.1:8081"
    #: configurable-http-proxy's REST API (loopback only).
    proxy_api_url: str = "http://127.0.0.1:8001"
    #: The hub API port, listened on every interface: workspaces reach it on their gateway.
    api_port: int = 8082
    #: The control plane, and the token the hub presents to it.
    platform_url: str = "http://127.0.0.1:8000"
    platform_token: str = ""
    #: The token the control plane presents to the hub API (start and stop servers).
    api_token: str = ""
    image: str = "sandbox-workspace:latest"
    #: What ``sandbox run`` starts: ``auto`` is the Docker hub where an engine answers
    #: (building the image once if missing), else the development workspace; ``none``
    #: starts no hub.
    start: Literal["auto", "docker", "development", "none"] = "auto"
    #: What the hub spawns: a hardened container, or (never in production) a local
    #: JupyterLab process, hub_config/dev_workspace.py.
    spawner: Literal["docker", "development"] = "docker"
    #: Where isolated workspaces run: Docker containers beside the hub, services of a
    #: Docker Swarm (hub_config/swarm.py), or pods on a Kubernetes cluster through
    #: KubeSpawner (hub_config/kubernetes.py, deploy/kubernetes).
    backend: Literal["docker", "swarm", "kubernetes"] = "docker"
    #: The development workspace's query workers: a JSON file of agreement id -> query
    #: service URL, read at every spawn (``sandbox run`` adds an agreement's worker when
    #: the operator provisions it); an agreement without one is refused.
    dev_workers_file: str = ""
    #: Seconds a spawn waits for the agreement's query service to answer before the
    #: workspace starts, refused with a reason if it never does; 0 does not wait.
    #: ``sandbox run`` sets it: a worker it started moments ago is still starting.
    query_service_wait: float = 0
    #: Where the hub keeps its state (SQLite database, cookie secret).
    state_dir: str = "var/hub"
    #: The hub's own database (SQLAlchemy URL): "" is SQLite in ``state_dir``, for one
    #: host; beyond one host, PostgreSQL (``postgresql+psycopg://…``, a database of its
    #: own), so that a hub started again, on this node or another, finds the servers still
    #: running and their routes.
    db_url: str = ""
    #: Researchers sign in through this OpenID Connect provider instead of with platform
    #: passwords when set (the platform's SANDBOX_OIDC_ISSUER; the hub is a second client).
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    #: The certificate chain and key (PEM) configurable-http-proxy serves the public URL
    #: with (JupyterHub's ``ssl_cert``/``ssl_key``); both or neither. ``sandbox run --tls``
    #: sets them to a development certificate under ``<data dir>/tls``.
    ssl_cert: str = ""
    ssl_key: str = ""
    #: A plain-HTTP port (every interface) on which the proxy answers every request with a
    #: redirect (301) to the HTTPS public URL (its ``--redirect-port``); 0: none.
    http_redirect_port: int = Field(default=0, ge=0, le=65535)

    @model_validator(mode="after")
    def _ssl_pair(self) -> HubSettings:
        if bool(self.ssl_cert) != bool(self.ssl_key):
            raise ValueError(
                "SANDBOX_HUB_SSL_CERT and SANDBOX_HUB_SSL_KEY go together (rule tls-pair): "
                "set both for the hub to serve HTTPS"
            )
        if self.http_redirect_port and not self.ssl_cert:
            raise ValueError(
                "SANDBOX_HUB_HTTP_REDIRECT_PORT redirects to HTTPS: it needs "
                "SANDBOX_HUB_SSL_CERT and SANDBOX_HUB_SSL_KEY"
            )
        return self
