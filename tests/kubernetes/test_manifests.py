"""Every manifest (deploy/kubernetes and an agreement's generated objects) is valid against
the Kubernetes API and runs its pods hardened."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from hub_config import kubernetes_agreement
from hub_config.kubernetes import BACKEND, worker_name
from query_guard.keys import NOISE_SECRET_FILE
from sandbox.workspaces import hardening
from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_ROLE
from tests.kubernetes.hardened import assert_hardened_pod
from tests.kubernetes.manifests import AGREEMENTS, everything, of_kind, platform
from tests.kubernetes.validate import assert_valid


def _name(manifest: dict) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


@pytest.mark.parametrize("manifest", everything(), ids=_name)
def test_manifest_is_valid(manifest):
    assert_valid(manifest)


@pytest.mark.parametrize("deployment", of_kind(everything(), "Deployment"), ids=_name)
def test_every_pod_is_hardened(deployment):
    assert_hardened_pod(deployment["spec"]["template"])


def test_everything_in_one_namespace_that_enforces_the_restricted_profile():
    [namespace] = of_kind(platform(), "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    others = [m for m in everything() if m["kind"] != "Namespace"]
    assert {m["metadata"]["namespace"] for m in others} == {namespace["metadata"]["name"]}


def test_only_the_hub_holds_an_api_token_and_its_rights_stay_in_the_namespace():
    deployments = {
        d["metadata"]["name"]: d["spec"]["template"] for d in of_kind(platform(), "Deployment")
    }
    holders = [
        name
        for name, pod in deployments.items()
        for volume in pod["spec"].get("volumes", [])
        for source in volume.get("projected", {}).get("sources", [])
        if "serviceAccountToken" in source
    ]
    assert holders == ["hub"]
    assert not of_kind(platform(), "ClusterRole") and not of_kind(platform(), "ClusterRoleBinding")
    [role] = of_kind(platform(), "Role")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert ("services", "get") in granted and ("pods", "create") in granted
    assert not {r for r, _ in granted} - {"pods", "persistentvolumeclaims", "events", "services"}
    assert not any(verb in {"update", "patch", "*"} for _, verb in granted)


def test_worker_serves_one_agreement_with_only_its_database():
    [agreement, other] = AGREEMENTS
    objects = kubernetes_agreement.agreement_manifests(agreement)
    [deployment] = of_kind(objects, "Deployment")
    [service] = of_kind(objects, "Service")
    pod = deployment["spec"]["template"]
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == worker_name(agreement)
    assert pod["metadata"]["labels"] == {
        LABEL_ROLE: "query-worker",
        LABEL_AGREEMENT: agreement.lower(),
    }
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    [container] = pod["spec"]["containers"]
    assert container["command"] == ["sandbox", "query-worker", "--agreement", agreement]
    assert any(arg.startswith("--tls-cert=") for arg in container["args"])
    data = [m for m in container["volumeMounts"] if m["name"] == "data"]
    assert data == [
        {
            "name": "data",
            "mountPath": f"/var/lib/sandbox/agreements/{agreement}.duckdb",
            "subPath": f"agreements/{agreement}.duckdb",
            "readOnly": True,
        },
        {"name": "data", "mountPath": "/var/lib/sandbox/exports", "subPath": "exports"},
    ]
    persistent = {v["name"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
    writable = {
        m["mountPath"]
        for m in container["volumeMounts"]
        if m["name"] in persistent and not m.get("readOnly")
    }
    assert writable == {"/var/lib/sandbox/exports"}
    keys = [m for m in container["volumeMounts"] if m["name"] == "keystore"]
    assert {(m["subPath"], m["readOnly"]) for m in keys} == {
        (f"agreements/{agreement}.json", True),
        ("masters", True),
    }
    assert other not in yaml.safe_dump(objects)
    [noise] = [v for v in pod["spec"]["volumes"] if v["name"] == "noise"]
    assert noise["secret"]["items"] == [{"key": NOISE_SECRET_FILE, "path": NOISE_SECRET_FILE}]


def test_printed_manifests_are_the_generated_ones(capsys):
    kubernetes_agreement.main(["AGR-2026-0001", "--namespace", "research"])
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    cluster = kubernetes_agreement.Cluster(namespace="research")
    assert [p for p in printed if p] == kubernetes_agreement.agreement_manifests(
        "AGR-2026-0001", cluster
    )


def _worker() -> dict:
    return kubernetes_agreement.agreement_manifests(AGREEMENTS[0])[-1]


def _misspelt(d: dict) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = (
        True
    )


def _placed_wrong(d: dict) -> None:
    d["spec"]["template"]["spec"]["readOnlyRootFilesystem"] = True  # a container's field


def _wrong_type(d: dict) -> None:
    d["spec"]["replicas"] = "1"


def _missing(d: dict) -> None:
    del d["spec"]["template"]["spec"]["containers"][0]["name"]


def _bad_name(d: dict) -> None:
    d["metadata"]["name"] = "Query_Worker"


@pytest.mark.parametrize("spoil", [_misspelt, _placed_wrong, _wrong_type, _missing, _bad_name])
def test_the_check_refuses_what_the_api_server_would(spoil):
    deployment = _worker()
    spoil(deployment)
    with pytest.raises((kubernetes_validate.ValidationError, ValueError, AssertionError)):
        assert_valid(deployment)


def test_the_longest_agreement_id_still_makes_valid_names():
    longest = "AGR-" + "9" * 26  # JupyterHub's server names stop at 30 characters
    for manifest in kubernetes_agreement.agreement_manifests(longest):
        assert_valid(manifest)


def _env(deployment: dict) -> dict[str, str]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_the_platform_and_the_agreements_name_the_same_things():
    objects = platform()
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    claims = {c["metadata"]["name"] for c in of_kind(objects, "PersistentVolumeClaim")}
    platform_env, hub_env = _env(deployments["platform"]), _env(deployments["hub"])
    assert platform_env["SANDBOX_DATA_DIR"] == kubernetes_agreement.DATA_DIR
    assert platform_env["SANDBOX_KEY_STORE_DIR"] == kubernetes_agreement.KEY_STORE_DIR
    assert hub_env["SANDBOX_HUB_API_PORT"] == str(kubernetes_agreement.HUB_PORT)
    assert hub_env["SANDBOX_TLS_CA"] == hardening.CA_PATH  # where workspaces have it too
    assert hub_env["SANDBOX_HUB_BACKEND"] == BACKEND
    # The hub's Service is named hub (HUB_SERVICE_HOST) and listens where the config says.
    assert [p["port"] for p in services["hub"]["spec"]["ports"]] == [kubernetes_agreement.HUB_PORT]
    worker = kubernetes_agreement.agreement_manifests(AGREEMENTS[0])[-1]["spec"]["template"]
    used = {
        v["persistentVolumeClaim"]["claimName"]
        for v in worker["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert used <= claims
