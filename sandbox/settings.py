"""Platform settings from the environment (prefix ``SANDBOX_``).

Defaults are the embedded development ones (SQLite and files under ``var/``);
production refuses to start on a development secret.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = None
    secret_key: str = DEV_SECRET
    timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = 8000
    query_service_url: str = "http://127.0.0.1:8000/qs"
    hub_url: str = "http://127.0.0.1:8081"
    #: The token JupyterHub presents to /api/hub/* (empty: the hub API is closed).
    hub_service_token: str = ""
    #: The scoped service token the platform presents to the hub's REST API to stop
    #: servers (the hub reads the same ``SANDBOX_HUB_API_TOKEN``). Empty: no hub runs
    #: workspaces, so there are no containers, networks or home volumes to manage.
    hub_api_token: str = ""
    #: The hub API port workspaces reach on their gateway (the hub reads the same
    #: ``SANDBOX_HUB_API_PORT``); the firewall lets it through with the query service's.
    hub_api_port: int = 8082
    #: What a researcher's workspace is: a hardened Docker container, or (``sandbox run``
    #: without Docker) the development workspace, a local JupyterLab process that is not
    #: isolated and is labelled so on every page.
    workspace_kind: Literal["docker", "development"] = "docker"
    #: Where Docker workspaces run (the hub reads the same ``SANDBOX_HUB_BACKEND``): beside
    #: the platform, as services of a Docker Swarm (sandbox/provisioning/swarm.py), or as
    #: pods through KubeSpawner, whose cluster objects the operator applies.
    hub_backend: Literal["docker", "swarm", "kubernetes"] = "docker"
    #: Why ``sandbox run`` started no hub and what the operator can do; the researcher's
    #: pages show it instead of a link to a workspace that cannot open.
    workspaces_missing: str = ""
    #: Extra non-working days and weekend working days (调休), as ISO dates.
    holidays: list[str] = []
    makeup_workdays: list[str] = []
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "sandbox@localhost"
    #: Sign-in through an external OpenID Connect provider (Wuxi Art.6 unified identity
    #: authentication); off while the issuer is empty. The secret comes from the
    #: environment only (SANDBOX_OIDC_CLIENT_SECRET). See sandbox/identity/oidc.py.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_redirect_url: str = ""  # https://<platform>/auth/oidc/callback, registered at the provider
    oidc_scope: str = "openid profile"
    oidc_display_name: str = "统一身份认证"
    #: ID-token ``amr`` values (RFC 8176) that show a second factor at the identity
    #: provider; an account that signs in with a second factor is refused without one.
    oidc_mfa_amr: list[str] = ["mfa", "otp", "hwk", "swk", "sc", "sms", "tel"]
    #: ``acr`` values the provider uses for multi-factor assurance; when set, the ID
    #: token's ``acr`` must also be one of them (sandbox/identity/oidc_mfa.py).
    oidc_mfa_acr: list[str] = []
    #: Whether researchers must sign in with a second factor (TOTP) too; providers,
    #: operators and the authority always do (sandbox/accounts/second_factor.py).
    mfa_researchers: Literal["required", "optional"] = "optional"
    #: age public keys (``age1…``, comma-separated) backups are encrypted to; the platform
    #: cannot read its own backups. Make a pair with ``sandbox backup-keygen``.
    backup_recipient: str = ""
    #: Where backups made from the operator's page and API go (``sandbox-backup-<UTC
    #: time>.tar.gz.age``, always encrypted). Unset: ``data_dir/backups``, which is for the
    #: demo only: in production point it at another disk, so that losing the data disk does
    #: not lose its backups too. A backup copies named files only (the database, dataset
    #: versions, keys, export files, bundles), so it never holds this folder, and a restore
    #: never brings one back.
    backup_dir: Path | None = None
    #: Hours between the backups the recurring duties make into ``backup_dir`` (as the
    #: platform, encrypted to ``backup_recipient``; none while it is unset); 0 turns them off.
    backup_every_hours: int = 24
    #: Seconds between runs of the recurring duties (agreement lifecycle, notices, audit
    #: checkpoint) inside ``sandbox serve``; 0 turns the timer off (then run
    #: ``sandbox duties run`` from cron or a systemd timer).
    duties_interval: int = 3600
    #: The record's head is signed (a checkpoint) once this many events are not under one,
    #: or once the oldest of them is ``checkpoint_every_seconds`` old, and when ``serve``
    #: stops (sandbox/audit/anchoring.py); 0 turns that trigger off, both 0 the timer.
    checkpoint_every_events: int = Field(default=1000, ge=0)
    checkpoint_every_seconds: int = Field(default=300, ge=0)
    #: Reverse proxies (addresses or networks, e.g. ``["10.0.0.2", "fd00::/8"]``) whose
    #: ``X-Forwarded-For`` names the client; empty: the client is the socket peer, and the
    #: header is ignored (sign-in backoff keys on this address, sandbox/http/client_address.py).
    trusted_proxies: list[str] = []
    #: The bearer token Prometheus presents to ``/metrics`` (platform and query workers).
    #: Empty: ``/metrics`` answers loopback peers only.
    metrics_token: str = ""
    #: The certificate chain (PEM) and private key the platform serves HTTPS with
    #: (``sandbox serve``/``run``); both or neither. Unset: plain HTTP, for a deployment
    #: behind a TLS-terminating reverse proxy on the same host (docs, operator's guide).
    #: ``sandbox run --tls`` (``make run``) sets both to a development certificate under
    #: ``data_dir/tls`` (sandbox/tls/development.py).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: The certificate authority (PEM) clients verify the platform's and the query
    #: workers' certificates against: the hub, and each workspace, where it is mounted
    #: read-only. Unset: the system's authorities.
    tls_ca: Path | None = None
    #: A plain-HTTP port on ``host`` that redirects GET and HEAD to the same path over
    #: HTTPS (308) and refuses anything else (rule ``tls-required``, sandbox/tls/web.py);
    #: 0: none. Needs ``tls_cert``.
    http_redirect_port: int = Field(default=0, ge=0, le=65535)
    #: The key store of data at rest (sandbox/keys/store.py): the master keys and each
    #: agreement's wrapped data key. It must lie outside ``data_dir`` (rule
    #: ``key-store-apart``), so that a copy of the data directory opens nothing; in
    #: production put it on another volume. Unset: ``<data_dir>-keystore`` beside it.
    key_store_dir: Path | None = None
    #: How master keys wrap data keys: AES-256-GCM, or SM4-GCM (GB/T 22239, 等保 2.0). A
    #: change takes effect at the next ``sandbox keys rotate``.
    key_wrap_algorithm: Literal["aes-256-gcm", "sm4-gcm"] = "aes-256-gcm"

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"SANDBOX_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
                ) from None
        return value

    @model_validator(mode="after")
    def _no_dev_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("SANDBOX_SECRET_KEY must be set in production")
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(
                "SANDBOX_TLS_CERT and SANDBOX_TLS_KEY go together (rule tls-pair): "
                "set both to serve HTTPS, or neither to serve plain HTTP behind a proxy"
            )
        if self.http_redirect_port and self.tls_cert is None:
            raise ValueError(
                "SANDBOX_HTTP_REDIRECT_PORT redirects to HTTPS (rule tls-redirect): "
                "it needs SANDBOX_TLS_CERT and SANDBOX_TLS_KEY"
            )
        return self

    @model_validator(mode="after")
    def _key_store_apart(self) -> Settings:
        if self.key_store_path.resolve().is_relative_to(self.data_dir.resolve()):
            raise ValueError(
                "SANDBOX_KEY_STORE_DIR must lie outside SANDBOX_DATA_DIR (rule key-store-apart): "
                "a copy of the data directory must not carry the keys that open it"
            )
        return self

    @property
    def scheme(self) -> str:
        """``https`` when the platform serves TLS itself, else ``http``."""
        return "https" if self.tls_cert else "http"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'sandbox.db').resolve()}"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def agreements_dir(self) -> Path:
        """Per-agreement DuckDB databases built at provisioning."""
        return self.data_dir / "agreements"

    @property
    def backups_dir(self) -> Path:
        """The folder ``backup_dir`` names, or ``data_dir/backups``."""
        return self.backup_dir or self.data_dir / "backups"

    @property
    def key_store_path(self) -> Path:
        """The folder ``key_store_dir`` names, or ``<data_dir>-keystore`` beside ``data_dir``."""
        if self.key_store_dir is not None:
            return self.key_store_dir
        data = self.data_dir.resolve()
        return data.with_name(f"{data.name}-keystore")

    @property
    def keys_dir(self) -> Path:
        """Secrets kept outside any researcher-visible database (pseudonym keys, signing key)."""
        return self.data_dir / "keys"


@lru_cache
def get_settings() -> Settings:
    return Settings()
