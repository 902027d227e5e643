"""The hardened settings of every workspace container, in one place.

The hub config passes them to DockerSpawner and the tests start containers with
exactly the same dicts, so what is tested is what is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_RESEARCHER, LABEL_ROLE

#: The image's unprivileged user (see images/Dockerfile).
WORKSPACE_USER = "1000:1000"
HOME_DIR = "/home/jovyan"
#: The agreement's project folder, shared by its researchers, inside each one's home.
PROJECT_DIR = f"{HOME_DIR}/project"
#: Where the platform's CA certificate is mounted read-only: the notebook client verifies
#: the query worker's certificate against it (``SANDBOX_QUERY_CA``).
CA_PATH = "/etc/sandbox/tls/ca.pem"
#: The workspace server's refusals of uploads and downloads (query_guard/workspace_ingress.py).
INGRESS = "query_guard.workspace_ingress"
#: Single-user server arguments: uploads (base64 saves) refused, the download and export
#: routes (/files/, /view/, /nbconvert/) closed, binary files not read out, by the
#: workspace's own contents manager and server extension. On the command line, so no
#: config file overrides them, and none in the home is read (:data:`SERVER_ENVIRONMENT`).
#: Defence in depth only: the editor shows text files, and the screen can be copied
#: (THREAT_MODEL).
SINGLEUSER_ARGS = [
    f"--ServerApp.contents_manager_class={INGRESS}.IngressContentsManager",
    f"--ServerApp.jpserver_extensions={INGRESS}=True",
    f"--ContentsManager.files_handler_class={INGRESS}.ClosedRoute",
    "--ContentsManager.files_handler_params={}",
    "--ContentsManager.allow_hidden=False",
]

#: The workspace server's environment: it reads configuration only from the image's own
#: read-only directories. A config file in the home (``~/.jupyter``, ``~/.local/etc/jupyter``)
#: is Python the server runs at its next start, which could undo :data:`SINGLEUSER_ARGS`;
#: so could a ``.pth`` file in the user's site-packages. JupyterLab's settings (JSON, never
#: run) stay in the home.
SERVER_ENVIRONMENT = {
    "JUPYTER_CONFIG_DIR": "/opt/venv/etc/jupyter",
    "PYTHONNOUSERSITE": "1",
    "JUPYTERLAB_SETTINGS_DIR": f"{HOME_DIR}/.jupyter/lab/user-settings",
    "JUPYTERLAB_WORKSPACES_DIR": f"{HOME_DIR}/.jupyter/lab/workspaces",
}


@dataclass(frozen=True)
class WorkspaceLimits:
    """Resources one workspace may use; memory is also the swap ceiling (no swap)."""

    memory: str = "2g"
    cpus: float = 1.0
    pids: int = 512
    tmp_size: str = "256m"


def host_config(
    limits: WorkspaceLimits,
    *,
    network: str,
    home_volume: str,
    dns: str,
    project_volume: str | None = None,
    ca_file: str | None = None,
) -> dict:
    """Keyword arguments for docker's ``create_host_config`` (and DockerSpawner's
    ``extra_host_config``).

    ``dns`` is the network's gateway: the embedded resolver forwards there, where the
    firewall rejects port 53, so names outside the network never resolve (CVE-2024-29018).
    No published ports; the mounts are the home volume, the agreement's project volume,
    shared by its researchers at :data:`PROJECT_DIR`, and, when the query service serves
    TLS, one host file: the platform's CA certificate ``ca_file`` (public), read-only at
    :data:`CA_PATH`.
    """
    binds = {home_volume: {"bind": HOME_DIR, "mode": "rw"}}
    if project_volume:
        binds[project_volume] = {"bind": PROJECT_DIR, "mode": "rw"}
    if ca_file:
        binds[ca_file] = {"bind": CA_PATH, "mode": "ro"}
    return {
        "network_mode": network,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmp_size}"},
        "binds": binds,
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        "dns": [dns],
        "dns_opt": ["timeout:1", "attempts:1"],
        "sysctls": {"net.ipv6.conf.all.disable_ipv6": "1"},
        "auto_remove": True,
        "port_bindings": {},
        "privileged": False,
    }


def create_kwargs(*, agreement_id: str, researcher: str) -> dict:
    """Keyword arguments for docker's ``create_container`` besides image and command."""
    return {
        "user": WORKSPACE_USER,
        "working_dir": HOME_DIR,
        "labels": {
            LABEL_AGREEMENT: agreement_id,
            LABEL_RESEARCHER: researcher,
            LABEL_ROLE: "workspace",
        },
    }
