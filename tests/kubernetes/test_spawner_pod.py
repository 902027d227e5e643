"""KubeSpawner's own pod manifest, from hub_config with ``SANDBOX_HUB_BACKEND=kubernetes``,
is the hardened workspace: the properties DockerSpawner's containers have, in Kubernetes'
terms, from the same settings."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from tornado import web

from hub_config.kubernetes import worker_host
from hub_config.kubernetes_agreement import agreement_manifests
from hub_config.spawner import SandboxSpawner
from sandbox.workspaces import hardening
from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_ROLE, server_name
from tests.kubernetes.conftest import HUB_SERVICE_HOST, load_hub_config
from tests.kubernetes.hardened import assert_hardened_pod
from tests.kubernetes.manifests import of_kind
from tests.kubernetes.spawned import WORKER_ADDRESS, pod_manifest, spawned, spawner_for
from tests.kubernetes.validate import assert_valid
from tests.workspaces.control_plane_stub import WORKSPACE_TOKEN

AGREEMENT = "AGR-2026-0001"


def _spawn(hub_config, username: str, agreement: str) -> dict:
    async def run() -> dict:
        spawner = await spawner_for(hub_config, username, server_name(agreement))
        return await pod_manifest(spawner)

    return asyncio.run(run())


def test_pod_is_hardened_and_valid(hub_config, stub):
    stub.grants.add(("alice@example.org", AGREEMENT))
    pod = _spawn(hub_config, "alice@example.org", AGREEMENT)
    assert_valid(pod)
    assert_hardened_pod(pod)
    spec = pod["spec"]
    [container] = spec["containers"]
    # The hub's limits, memory requested whole, as Docker's "3g" reads.
    resources = {k: {r: str(q) for r, q in v.items()} for k, v in container["resources"].items()}
    assert resources["limits"] == {"cpu": "1.5", "memory": str(3 * 2**30)}
    assert resources["requests"] == {"cpu": "0.1", "memory": str(3 * 2**30)}
    assert container["securityContext"]["runAsUser"] == 1000
    assert container["workingDir"] == hardening.HOME_DIR
    assert container["args"][-len(hardening.SINGLEUSER_ARGS) :] == hardening.SINGLEUSER_ARGS
    assert spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in spec


def test_pod_joins_only_its_agreement(hub_config, stub):
    stub.grants.add(("alice@example.org", AGREEMENT))
    pod = _spawn(hub_config, "alice@example.org", AGREEMENT)
    labels = pod["metadata"]["labels"]
    assert labels[LABEL_AGREEMENT] == server_name(AGREEMENT)
    assert labels[LABEL_ROLE] == "workspace"
    spec = pod["spec"]
    host = worker_host(AGREEMENT, "sandbox")
    # No resolver: the worker's name is written in, the hub is reached by address.
    assert spec["dnsPolicy"] == "None" and spec["dnsConfig"]["nameservers"] == ["127.0.0.1"]
    assert spec["hostAliases"] == [{"ip": WORKER_ADDRESS, "hostnames": [host]}]
    assert spec["enableServiceLinks"] is False
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env["SANDBOX_AGREEMENT_ID"] == AGREEMENT
    assert env["SANDBOX_QUERY_URL"] == f"https://{host}:8443/qs"
    assert env["SANDBOX_TOKEN"] == WORKSPACE_TOKEN
    assert env["SANDBOX_QUERY_CA"] == hardening.CA_PATH
    assert env["JUPYTERHUB_API_URL"] == f"http://{HUB_SERVICE_HOST}:8082/hub/api"
    for name, value in hardening.SERVER_ENVIRONMENT.items():
        assert env[name] == value
    # The environment is an allowlist: nothing of the hub's own reaches the pod.
    assert not {name for name in env if name.startswith(("SANDBOX_HUB", "KUBE", "HUB_"))}
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert set(mounts) == {hardening.HOME_DIR, hardening.PROJECT_DIR, "/tmp", hardening.CA_PATH}
    assert mounts[hardening.CA_PATH]["readOnly"] is True
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    }
    [project] = of_kind(agreement_manifests(AGREEMENT), "PersistentVolumeClaim")
    assert claims == {
        "home": f"sandbox-home-{labels['sandbox.researcher']}--{server_name(AGREEMENT)}",
        "project": project["metadata"]["name"],
    }


def test_unauthorized_spawn_is_refused_before_any_pod(hub_config, stub):
    with pytest.raises(web.HTTPError) as refused:
        _spawn(hub_config, "mallory", AGREEMENT)
    assert refused.value.status_code == 403 and "no active agreement" in refused.value.log_message


def test_the_proxy_and_the_workspaces_outlive_a_hub_pod(hub_config):
    assert hub_config.ConfigurableHTTPProxy.should_start is False
    assert hub_config.JupyterHub.cleanup_servers is False
    assert hub_config.JupyterHub.hub_connect_url == "http://hub:8082"


def test_docker_stays_the_default(hub_config, monkeypatch):
    monkeypatch.delenv("SANDBOX_HUB_BACKEND")
    config = load_hub_config()
    assert config.JupyterHub.spawner_class is SandboxSpawner
    assert "KubeSpawner" not in config and "cleanup_servers" not in config.JupyterHub
    assert "should_start" not in config.ConfigurableHTTPProxy


def test_the_hub_refuses_to_start_outside_its_service(hub_config, monkeypatch):
    monkeypatch.delenv("HUB_SERVICE_HOST")
    with pytest.raises(RuntimeError, match="HUB_SERVICE_HOST"):
        load_hub_config()


def test_home_volume_is_the_researchers_own_on_this_agreement(hub_config, stub):
    stub.grants.add(("alice@example.org", AGREEMENT))

    async def run() -> tuple[dict, dict]:
        return await spawned(await spawner_for(hub_config, "alice@example.org", "agr-2026-0001"))

    pod, pvc = asyncio.run(run())
    assert_valid(pvc)
    [home] = [v for v in pod["spec"]["volumes"] if v["name"] == "home"]
    assert home["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pvc["metadata"]["labels"][LABEL_AGREEMENT] == server_name(AGREEMENT)
    assert pvc["metadata"]["labels"][LABEL_ROLE] == "home"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"


def test_a_misspelt_backend_is_refused_not_taken_for_docker(hub_config, monkeypatch):
    monkeypatch.setenv("SANDBOX_HUB_BACKEND", "kubernets")
    with pytest.raises(ValidationError, match="backend"):
        load_hub_config()
