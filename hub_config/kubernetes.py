"""Workspaces on Kubernetes through KubeSpawner (``SANDBOX_HUB_BACKEND=kubernetes``).

The same workspace as DockerSpawner's, from the same sources: limits from the hub's
settings, user, paths, server arguments and environment from
``sandbox.workspaces.hardening``, the control plane's authorization at every spawn. The
agreement's network becomes NetworkPolicies (hub_config/kubernetes_agreement.py) that
select the pod by the agreement label this hook sets, and the pod gets no DNS: the
worker's and the hub's addresses are written into it, as the Docker workspace's resolver
answers nothing outside its network.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from docker.utils import parse_bytes
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub_config import hooks
from hub_config.control_plane import ControlPlane
from hub_config.settings import HubSettings
from sandbox.workspaces import hardening
from sandbox.workspaces.names import (
    LABEL_AGREEMENT,
    LABEL_RESEARCHER,
    LABEL_ROLE,
    network_name,
    project_volume_name,
    server_name,
)

#: The hub's ``backend`` (``SANDBOX_HUB_BACKEND``) that spawns workspaces with KubeSpawner.
BACKEND = "kubernetes"
#: The port a query worker serves TLS on, inside the cluster.
WORKER_PORT = 8443
#: The ConfigMap holding the platform's CA certificate (key ``ca.pem``), public.
CA_CONFIGMAP = "sandbox-ca"
#: The same start as the Docker workspace: welcome notebook, then the single-user server.
WORKSPACE_CMD = ["python", "-m", "query_guard.workspace_start", "jupyterhub-singleuser"]

_UID, _GID = (int(part) for part in hardening.WORKSPACE_USER.split(":"))

#: Every pod of the platform runs so (the manifests in deploy/kubernetes say the same).
POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": _UID,
    "runAsGroup": _GID,
    "fsGroup": _GID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: Every container: Docker's ``cap_drop=ALL``, ``no-new-privileges`` and ``read_only``.
CONTAINER_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


class KubernetesSettings(BaseSettings):
    """What only the Kubernetes backend needs (prefix ``SANDBOX_HUB_K8S_``)."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_HUB_K8S_", extra="ignore")

    namespace: str = "sandbox"
    #: The hub Service's cluster address: Kubernetes puts it in the hub pod's environment
    #: (the Service is named ``hub``); workspaces reach the hub there, without DNS.
    hub_service_host: str = Field("", validation_alias="HUB_SERVICE_HOST")
    #: The storage class of the home volumes ("": the cluster's default).
    storage_class: str = ""
    home_size: str = "10Gi"
    #: CPU requested per workspace; an idle one uses little. Memory is requested whole:
    #: it cannot be taken back from a pod without killing it.
    cpu_request: float = 0.1


def worker_name(agreement_id: str) -> str:
    """The agreement's query worker Deployment and Service (a DNS label, at most 63)."""
    return f"{network_name(agreement_id)}-qw"


def worker_host(agreement_id: str, namespace: str) -> str:
    """The worker Service's name, as its TLS certificate must name it."""
    return f"{worker_name(agreement_id)}.{namespace}.svc"


def agreement_label(agreement_id: str) -> str:
    """The value of the agreement label on Kubernetes: the server name, a valid label."""
    return server_name(agreement_id)


@dataclass(frozen=True)
class KubernetesPolicy:
    """What every Kubernetes workspace gets, whoever starts it."""

    namespace: str
    query_service_wait: float = 0


async def service_address(spawner, name: str) -> str:
    """The cluster address of Service ``name`` in the spawner's namespace (hub's API rights)."""
    service = await spawner.api.read_namespaced_service(name=name, namespace=spawner.namespace)
    return service.spec.cluster_ip


async def pre_spawn(
    spawner,
    *,
    control_plane: ControlPlane,
    policy: KubernetesPolicy,
    find_service: Callable[[object, str], Awaitable[str]] = service_address,
) -> None:
    """Refuse unless the control plane authorizes this researcher on this agreement now;
    then label the pod (into its agreement's NetworkPolicies) and its home volume, mount
    the agreement's project volume and hand it the worker's address and the token."""
    grant = await hooks.authorize(spawner, control_plane)
    agreement_id = grant.agreement_id
    worker = worker_name(agreement_id)
    host = worker_host(agreement_id, policy.namespace)
    spawner.extra_labels = {
        **spawner.extra_labels,
        LABEL_AGREEMENT: agreement_label(agreement_id),
        LABEL_RESEARCHER: "{username}",  # KubeSpawner's label-safe slug of the name
        LABEL_ROLE: "workspace",
    }
    spawner.storage_extra_labels = {  # the home volume, deleted with the agreement's objects
        **spawner.storage_extra_labels,
        LABEL_AGREEMENT: agreement_label(agreement_id),
    }
    project = project_volume_name(agreement_id)
    spawner.volumes = {
        **spawner.volumes,
        "project": {"name": "project", "persistentVolumeClaim": {"claimName": project}},
    }
    spawner.volume_mounts = {
        **spawner.volume_mounts,
        "project": {"name": "project", "mountPath": hardening.PROJECT_DIR},
    }
    address = await find_service(spawner, worker)
    spawner.extra_pod_config = {
        **spawner.extra_pod_config,
        "hostAliases": [{"ip": address, "hostnames": [host]}],
    }
    query_url = f"https://{host}:{WORKER_PORT}/qs"
    if policy.query_service_wait:
        await hooks.wait_for_query_service(
            lambda: query_url, policy.query_service_wait, agreement_id, hardening.CA_PATH
        )
    spawner.environment = {
        **spawner.environment,
        **hooks.workspace_environment(grant, query_url, hardening.CA_PATH),
    }


def configure(c, hub: HubSettings, control_plane: ControlPlane) -> None:  # type: ignore[no-untyped-def]
    """The hub's settings for KubeSpawner workspaces, with a proxy in its own pod."""
    k8s = KubernetesSettings()
    if not k8s.hub_service_host:
        raise RuntimeError(
            "SANDBOX_HUB_BACKEND=kubernetes needs the hub Service's address (HUB_SERVICE_HOST, "
            "set by Kubernetes for a Service named hub): deploy with deploy/kubernetes"
        )
    limits = hub.container_limits()
    memory = parse_bytes(limits.memory)  # Docker's reading of "2g", in bytes
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.ConfigurableHTTPProxy.should_start = False  # the proxy Deployment; token from the env
    # A hub pod that stops (an upgrade, a node drained) leaves workspaces running; the next
    # one finds them again from its database (hub-state).
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.hub_connect_url = f"http://hub:{hub.api_port}"  # for the proxy
    c.KubeSpawner.hub_connect_url = f"http://{k8s.hub_service_host}:{hub.api_port}"
    c.KubeSpawner.namespace = k8s.namespace
    c.KubeSpawner.image = hub.image
    c.KubeSpawner.image_pull_policy = "IfNotPresent"  # name the image by digest
    c.KubeSpawner.cmd = WORKSPACE_CMD
    c.KubeSpawner.pod_name_template = "sandbox-{user_server}"
    c.KubeSpawner.working_dir = hardening.HOME_DIR
    c.KubeSpawner.environment = dict(hardening.SERVER_ENVIRONMENT)
    # --- Who the workspace is, and what it may not do ----------------------------------
    c.KubeSpawner.uid = _UID
    c.KubeSpawner.gid = _GID
    c.KubeSpawner.privileged = False
    c.KubeSpawner.allow_privilege_escalation = False
    c.KubeSpawner.pod_security_context = copy.deepcopy(POD_SECURITY_CONTEXT)
    c.KubeSpawner.container_security_context = copy.deepcopy(CONTAINER_SECURITY_CONTEXT)
    c.KubeSpawner.service_account = None
    c.KubeSpawner.automount_service_account_token = False
    # No other Service's address in the environment, and no resolver: names are the hook's.
    c.KubeSpawner.extra_pod_config = {
        "enableServiceLinks": False,
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": ["127.0.0.1"]},
    }
    # --- Limits: memory requested whole and capped (keep swap off on workspace nodes) --
    c.KubeSpawner.mem_limit = memory
    c.KubeSpawner.mem_guarantee = memory
    c.KubeSpawner.cpu_limit = limits.cpus
    c.KubeSpawner.cpu_guarantee = min(k8s.cpu_request, limits.cpus)
    # --- Storage: a home per (researcher, agreement), deleted with its named server -----
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.pvc_name_template = "sandbox-home-{user_server}"
    c.KubeSpawner.storage_capacity = k8s.home_size
    c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
    c.KubeSpawner.storage_class = k8s.storage_class or None
    c.KubeSpawner.storage_extra_labels = {LABEL_ROLE: "home"}
    c.KubeSpawner.delete_pvc = True
    c.KubeSpawner.volumes = {
        "home": {"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}},
        "tmp": {
            "name": "tmp",
            "emptyDir": {"medium": "Memory", "sizeLimit": str(parse_bytes(limits.tmp_size))},
        },
        "ca": {"name": "ca", "configMap": {"name": CA_CONFIGMAP}},
    }
    c.KubeSpawner.volume_mounts = {
        "home": {"name": "home", "mountPath": hardening.HOME_DIR},
        "tmp": {"name": "tmp", "mountPath": "/tmp"},
        "ca": {"name": "ca", "mountPath": hardening.CA_PATH, "subPath": "ca.pem", "readOnly": True},
    }
    c.Spawner.pre_spawn_hook = partial(
        pre_spawn,
        control_plane=control_plane,
        policy=KubernetesPolicy(namespace=k8s.namespace, query_service_wait=hub.query_service_wait),
    )
