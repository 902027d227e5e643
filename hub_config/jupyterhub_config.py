"""JupyterHub for the data sandbox: one hardened workspace per (researcher, agreement).

Run with ``jupyterhub -f hub_config/jupyterhub_config.py``; settings come from
``SANDBOX_HUB_*`` (hub_config/settings.py) and ``SANDBOX_QUERY_SERVICE_URL``.
"""

import sys
from functools import partial
from pathlib import Path

from hub_config import dev_workspace, hooks, kubernetes, oidc_login, swarm
from hub_config.auth import ControlPlaneAuthenticator
from hub_config.control_plane import HttpControlPlane
from hub_config.settings import HubSettings
from hub_config.spawner import SandboxSpawner
from sandbox.settings import get_settings
from sandbox.tls.web import HSTS
from sandbox.workspaces.hardening import SINGLEUSER_ARGS, WorkspaceLimits

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file
hub = HubSettings()
state = Path(hub.state_dir).resolve()
state.mkdir(parents=True, exist_ok=True)
tls_ca = get_settings().tls_ca  # SANDBOX_TLS_CA: the platform's and the workers' CA
control_plane = HttpControlPlane(
    hub.platform_url, hub.platform_token, ca=str(tls_ca) if tls_ca else None
)

# --- Where the hub listens -------------------------------------------------------------
# Researchers use the proxy's public address; the hub API listens on every interface
# because each agreement's workspaces reach it on their own network's gateway.
c.JupyterHub.bind_url = hub.public_url
c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{hub.api_port}"
c.JupyterHub.db_url = hub.db_url or f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.api_url = hub.proxy_api_url
# HTTPS on the public URL (the proxy's --ssl-cert/--ssl-key) when a certificate is set,
# a plain-HTTP port that only redirects to it if asked, and HSTS on the hub's pages in
# production (for the host name: a browser then refuses plain HTTP to every port of it).
c.JupyterHub.ssl_cert = hub.ssl_cert
c.JupyterHub.ssl_key = hub.ssl_key
if hub.http_redirect_port:
    c.ConfigurableHTTPProxy.command = [
        "configurable-http-proxy",
        f"--redirect-port={hub.http_redirect_port}",
    ]
if hub.ssl_cert and get_settings().environment == "production":
    c.JupyterHub.tornado_settings = {"headers": {"Strict-Transport-Security": HSTS.decode()}}
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")

# --- Who may log in ----------------------------------------------------------------------
# The control plane checks passwords, or names the researcher linked to the identity
# provider's subject; every account it accepts may log in, and nobody is a hub admin:
# the admin role can open any server, and operators must not read data (R16).
if hub.oidc_issuer:
    oidc_login.configure(c, hub)
else:
    c.JupyterHub.authenticator_class = ControlPlaneAuthenticator
    c.ControlPlaneAuthenticator.control_plane = control_plane
    # The second factor's code, for researchers who have one (left empty by the others).
    c.ControlPlaneAuthenticator.request_otp = True
    c.ControlPlaneAuthenticator.otp_prompt = "验证码 / authenticator code (if you set one up):"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = set()
c.JupyterHub.admin_access = False

# --- One named server per agreement ------------------------------------------------------
# The server name is the agreement id; the default (unnamed) server is refused by the hook.
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 0

# --- The workspace ---------------------------------------------------------------------
# The start puts the agreement's welcome notebook into a new home, then execs the server.
c.Spawner.args = SINGLEUSER_ARGS  # raw-file download route answers 403
c.Spawner.default_url = "/lab"
c.Spawner.env_keep = []  # an allowlist: hub secrets never reach a workspace
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
if hub.spawner == "development":
    # A local JupyterLab per researcher and agreement, not isolated: refused in production.
    dev_workspace.configure(c, hub, control_plane)
elif hub.backend == kubernetes.BACKEND:
    # KubeSpawner pods, hardened alike; the cluster's own manifests in deploy/kubernetes.
    kubernetes.configure(c, hub, control_plane)
elif hub.backend == swarm.BACKEND:
    # Swarm services on the agreement's encrypted overlay, hardened alike (hub_config/swarm.py).
    swarm.configure(c, hub, control_plane)
else:
    c.JupyterHub.spawner_class = SandboxSpawner
    c.DockerSpawner.image = hub.image
    c.DockerSpawner.allowed_images = [hub.image]
    c.DockerSpawner.pull_policy = "never"  # images are built offline, never pulled
    c.DockerSpawner.name_template = "sandbox-{username}--{servername}"
    c.DockerSpawner.use_internal_ip = True  # the network is set per spawn by the hook
    c.DockerSpawner.remove = True  # a stopped workspace leaves only its home volume
    c.DockerSpawner.cmd = ["python", "-m", "query_guard.workspace_start", "jupyterhub-singleuser"]
    c.DockerSpawner.cpu_limit = None  # CPU is capped by NanoCpus in the hardened host config
    c.Spawner.pre_spawn_hook = partial(
        hooks.pre_spawn,
        control_plane=control_plane,
        policy=hooks.WorkspacePolicy(
            query_service_url=get_settings().query_service_url,
            hub_api_port=hub.api_port,
            limits=WorkspaceLimits(memory=hub.memory, cpus=hub.cpus, pids=hub.pids),
            query_service_wait=hub.query_service_wait,
            tls_ca=str(tls_ca.resolve()) if tls_ca else None,  # a bind mount's host path
        ),
    )

# --- Services and roles ------------------------------------------------------------------
# The control plane starts and stops servers (expiry, revocation, R11 suspension) but
# holds no access:servers scope, so it cannot open a workspace; neither can the culler.
services = [
    {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={hub.idle_timeout}",
        ],
    }
]
roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }
]
if hub.api_token:
    services.append({"name": "sandbox-control-plane", "api_token": hub.api_token})
    roles.append(
        {
            "name": "sandbox-control-plane",
            "scopes": ["admin:users", "servers"],
            "services": ["sandbox-control-plane"],
        }
    )
# JupyterHub's own Prometheus metrics (/hub/metrics) stay on and need a token with
# read:metrics: the one the platform's and the query workers' /metrics take.
if get_settings().metrics_token:
    services.append({"name": "prometheus", "api_token": get_settings().metrics_token})
    roles.append({"name": "prometheus", "scopes": ["read:metrics"], "services": ["prometheus"]})
c.JupyterHub.services = services
c.JupyterHub.load_roles = roles
