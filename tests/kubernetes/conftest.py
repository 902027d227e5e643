"""The hub's configuration loaded as JupyterHub loads it, with ``SANDBOX_HUB_BACKEND=kubernetes``.

No cluster runs here: KubeSpawner is given a kubeconfig naming a loopback address that
nothing in these tests contacts (building a pod manifest asks no API server).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes_asyncio.config import kube_config
from traitlets.config import Config, PyFileConfigLoader

from tests.workspaces.control_plane_stub import HUB_TOKEN, ControlPlaneStub

CONFIG = Path(__file__).resolve().parents[2] / "hub_config" / "jupyterhub_config.py"
HUB_SERVICE_HOST = "10.96.0.20"

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: never-sent}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: sandbox}}]
current-context: none
"""


@pytest.fixture
def stub():
    stub = ControlPlaneStub(grants=set())
    yield stub
    stub.close()


@pytest.fixture
def hub_config(tmp_path, monkeypatch, stub) -> Config:
    """jupyterhub_config.py as the Kubernetes hub pod would load it."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    # The client read $KUBECONFIG when it was imported; KubeSpawner reads it from there.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    for name, value in {
        "SANDBOX_HUB_BACKEND": "kubernetes",
        "SANDBOX_HUB_SPAWNER": "docker",  # isolated workspaces, whatever the run's own
        "HUB_SERVICE_HOST": HUB_SERVICE_HOST,
        "SANDBOX_HUB_STATE_DIR": str(tmp_path / "hub"),
        "SANDBOX_HUB_PLATFORM_URL": stub.url,
        "SANDBOX_HUB_PLATFORM_TOKEN": HUB_TOKEN,
        "SANDBOX_HUB_IMAGE": "registry.example/sandbox-workspace@sha256:" + "0" * 64,
        "SANDBOX_HUB_MEMORY": "3g",
        "SANDBOX_HUB_CPUS": "1.5",
    }.items():
        monkeypatch.setenv(name, value)
    return load_hub_config()


def load_hub_config() -> Config:
    """Run jupyterhub_config.py as ``jupyterhub -f`` does, in this environment."""
    return PyFileConfigLoader(CONFIG.name, str(CONFIG.parent)).load_config()
