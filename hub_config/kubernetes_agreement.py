"""One agreement's objects on Kubernetes: its query worker, its project volume, and the
NetworkPolicies that make the agreement's network.

The worker runs as ``sandbox query-worker`` does on one host (ARCHITECTURE, query
service): one pod per agreement, only that agreement's DuckDB file mounted read-only, TLS
for the name workspaces verify. The policies let the agreement's workspaces reach that
worker and the hub, and nothing else; the platform's own objects and the namespace's
default deny are in deploy/kubernetes/platform.yaml. Print them with
``python -m hub_config.kubernetes_agreement AGR-2026-0001 | kubectl apply -f -``.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass

import yaml

from hub_config.kubernetes import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    WORKER_PORT,
    agreement_label,
    worker_name,
)
from query_guard.keys import NOISE_SECRET_FILE
from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_ROLE, project_volume_name

#: The platform's data directory inside its pods, on the ``sandbox-data`` volume.
DATA_DIR = "/var/lib/sandbox"
#: The key store (``SANDBOX_KEY_STORE_DIR``), on a volume of its own, apart from the data.
KEY_STORE_DIR = "/var/lib/sandbox-keystore"
#: The hub's API port (``SANDBOX_HUB_API_PORT``), which workspaces may reach.
HUB_PORT = 8082
_TLS_DIR = "/etc/sandbox/worker-tls"


@dataclass(frozen=True)
class Cluster:
    """Where and from what the agreement's objects are made."""

    namespace: str = "sandbox"
    #: The platform's image (``sandbox`` installed, run as 1000:1000), named by digest.
    platform_image: str = "sandbox-platform:latest"
    #: A storage class whose volumes several nodes mount at once (ReadWriteMany).
    shared_storage_class: str = ""
    project_size: str = "20Gi"
    #: DuckDB's own cap is 1 GB (query_guard/engine.py); the rest is the server's.
    worker_memory: str = "1536Mi"
    worker_cpu: str = "1"


def _labels(agreement_id: str, role: str) -> dict[str, str]:
    return {LABEL_ROLE: role, LABEL_AGREEMENT: agreement_label(agreement_id)}


def _meta(name: str, agreement_id: str, role: str, cluster: Cluster) -> dict:
    return {"name": name, "namespace": cluster.namespace, "labels": _labels(agreement_id, role)}


def _tcp(port: int) -> list[dict]:
    return [{"protocol": "TCP", "port": port}]


def _pods(role: str, agreement_id: str | None = None) -> dict:
    labels = {LABEL_ROLE: role}
    if agreement_id is not None:
        labels[LABEL_AGREEMENT] = agreement_label(agreement_id)
    return {"podSelector": {"matchLabels": labels}}


def worker_deployment(agreement_id: str, cluster: Cluster) -> dict:
    """The worker: ``sandbox query-worker`` over TLS, its agreement's database only, and
    of the key store the master keys and its agreement's wrapped data key only."""
    name = worker_name(agreement_id)
    database = f"agreements/{agreement_id}.duckdb"
    data_key = f"agreements/{agreement_id}.json"
    container = {
        "name": "query-worker",
        "image": cluster.platform_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sandbox", "query-worker", "--agreement", agreement_id],
        "args": [
            f"--port={WORKER_PORT}",
            "--host=0.0.0.0",
            f"--tls-cert={_TLS_DIR}/tls.crt",
            f"--tls-key={_TLS_DIR}/tls.key",
        ],
        "env": [
            {"name": "SANDBOX_ENVIRONMENT", "value": "production"},
            {"name": "SANDBOX_DATA_DIR", "value": DATA_DIR},
            {"name": "SANDBOX_KEY_STORE_DIR", "value": KEY_STORE_DIR},
        ],
        # SANDBOX_DATABASE_URL, SANDBOX_SECRET_KEY, SANDBOX_METRICS_TOKEN
        "envFrom": [{"secretRef": {"name": "sandbox-worker-env"}}],
        "ports": [{"name": "https", "containerPort": WORKER_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": WORKER_PORT}, "periodSeconds": 5},
        "resources": {
            "requests": {"cpu": "250m", "memory": cluster.worker_memory},
            "limits": {"cpu": cluster.worker_cpu, "memory": cluster.worker_memory},
        },
        "securityContext": copy.deepcopy(CONTAINER_SECURITY_CONTEXT),  # each its own
        "volumeMounts": [
            {
                "name": "data",
                "mountPath": f"{DATA_DIR}/{database}",
                "subPath": database,
                "readOnly": True,
            },
            # Export requests handed in through the worker keep their files here, for the
            # platform's review (export_review/requests.py): the one folder it writes.
            {"name": "data", "mountPath": f"{DATA_DIR}/exports", "subPath": "exports"},
            {
                "name": "keystore",
                "mountPath": f"{KEY_STORE_DIR}/{data_key}",
                "subPath": data_key,
                "readOnly": True,
            },
            {
                "name": "keystore",
                "mountPath": f"{KEY_STORE_DIR}/masters",
                "subPath": "masters",
                "readOnly": True,
            },
            {"name": "noise", "mountPath": f"{DATA_DIR}/keys", "readOnly": True},
            {"name": "tls", "mountPath": _TLS_DIR, "readOnly": True},
            {"name": "query-tmp", "mountPath": f"{DATA_DIR}/query-tmp"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    volumes = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "sandbox-data"}},
        {
            "name": "keystore",
            "persistentVolumeClaim": {"claimName": "sandbox-keystore", "readOnly": True},
        },
        {
            "name": "noise",
            "secret": {
                "secretName": "sandbox-noise-secret",
                "items": [{"key": NOISE_SECRET_FILE, "path": NOISE_SECRET_FILE}],
                "defaultMode": 0o440,
            },
        },
        {"name": "tls", "secret": {"secretName": f"{name}-tls", "defaultMode": 0o440}},
        {"name": "query-tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    labels = _labels(agreement_id, "query-worker")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, agreement_id, "query-worker", cluster),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": copy.deepcopy(POD_SECURITY_CONTEXT),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def worker_service(agreement_id: str, cluster: Cluster) -> dict:
    """The worker's address; its certificate names ``<name>.<namespace>.svc``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(worker_name(agreement_id), agreement_id, "query-worker", cluster),
        "spec": {
            "type": "ClusterIP",
            "selector": _labels(agreement_id, "query-worker"),
            "ports": [
                {"name": "https", "port": WORKER_PORT, "targetPort": "https", "protocol": "TCP"}
            ],
        },
    }


def project_volume(agreement_id: str, cluster: Cluster) -> dict:
    """The project folder the agreement's researchers share (every node may run one)."""
    spec: dict = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": cluster.project_size}},
    }
    if cluster.shared_storage_class:
        spec["storageClassName"] = cluster.shared_storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(project_volume_name(agreement_id), agreement_id, "project", cluster),
        "spec": spec,
    }


def workspace_policy(agreement_id: str, cluster: Cluster) -> dict:
    """The agreement's workspaces may open connections to its worker and the hub only."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(f"{worker_name(agreement_id)}-ws", agreement_id, "workspace", cluster),
        "spec": {
            "podSelector": {"matchLabels": _labels(agreement_id, "workspace")},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [_pods("query-worker", agreement_id)], "ports": _tcp(WORKER_PORT)},
                {"to": [_pods("hub")], "ports": _tcp(HUB_PORT)},
            ],
        },
    }


def worker_policy(agreement_id: str, cluster: Cluster) -> dict:
    """The agreement's worker answers its workspaces, and the hub's readiness check."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(worker_name(agreement_id), agreement_id, "query-worker", cluster),
        "spec": {
            "podSelector": {"matchLabels": _labels(agreement_id, "query-worker")},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [_pods("workspace", agreement_id), _pods("hub")],
                    "ports": _tcp(WORKER_PORT),
                }
            ],
        },
    }


def agreement_manifests(agreement_id: str, cluster: Cluster | None = None) -> list[dict]:
    """Every object the agreement needs beside the platform's, in the order to apply."""
    cluster = cluster or Cluster()
    return [
        project_volume(agreement_id, cluster),
        workspace_policy(agreement_id, cluster),
        worker_policy(agreement_id, cluster),
        worker_service(agreement_id, cluster),
        worker_deployment(agreement_id, cluster),
    ]


def main(argv: list[str] | None = None) -> None:
    """Print the agreement's objects as YAML for ``kubectl apply -f -``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("agreement_id")
    parser.add_argument("--namespace", default=Cluster.namespace)
    parser.add_argument("--platform-image", default=Cluster.platform_image)
    parser.add_argument("--shared-storage-class", default=Cluster.shared_storage_class)
    args = parser.parse_args(argv)
    cluster = Cluster(
        namespace=args.namespace,
        platform_image=args.platform_image,
        shared_storage_class=args.shared_storage_class,
    )
    print(yaml.safe_dump_all(agreement_manifests(args.agreement_id, cluster), sort_keys=False))


if __name__ == "__main__":
    main()
