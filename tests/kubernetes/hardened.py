"""Every pod of the platform is hardened alike; one check for KubeSpawner's pods, the
workers' and the platform's, so none is held to less."""

from __future__ import annotations

#: The volume types the "restricted" pod-security profile admits (no hostPath, no NFS...).
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def assert_hardened_pod(pod: dict) -> None:
    """Raise unless the pod (or pod template) runs non-root, read-only, without a token,
    under seccomp RuntimeDefault, without capabilities or privilege escalation, and with
    requests and limits on CPU and memory for every container, and only the volume types
    the namespace's "restricted" profile admits."""
    spec = pod["spec"]
    where = pod["metadata"].get("name", "pod")
    assert spec.get("automountServiceAccountToken") is False, where
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
    pod_context = spec.get("securityContext") or {}
    assert pod_context.get("runAsNonRoot") is True, where
    assert pod_context.get("seccompProfile") == {"type": "RuntimeDefault"}, where
    assert pod_context.get("runAsUser", 1) != 0, where
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        name = f"{where}/{container['name']}"
        context = container.get("securityContext") or {}
        assert context.get("runAsNonRoot", True) is True, name
        assert context.get("runAsUser", 1) != 0, name
        assert context.get("readOnlyRootFilesystem") is True, name
        assert context.get("allowPrivilegeEscalation") is False, name
        assert context.get("privileged", False) is False, name
        assert context.get("capabilities") == {"drop": ["ALL"]}, name
        assert context.get("seccompProfile", {"type": "RuntimeDefault"}) == {
            "type": "RuntimeDefault"
        }, name
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind) or {}), f"{name}: {kind}"
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        assert kinds <= RESTRICTED_VOLUMES, f"{where}: volume {volume['name']} is {kinds}"
