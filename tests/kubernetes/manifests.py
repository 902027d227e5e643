"""The manifests under test: deploy/kubernetes and two agreements' generated objects."""

from __future__ import annotations

from pathlib import Path

import yaml

from hub_config.kubernetes_agreement import agreement_manifests

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
AGREEMENTS = ("AGR-2026-0001", "AGR-2026-0002")


def platform() -> list[dict]:
    """Every object of every YAML file under deploy/kubernetes."""
    return [
        document
        for path in sorted(DEPLOY.rglob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document
    ]


def everything() -> list[dict]:
    """The platform's objects and those of :data:`AGREEMENTS`."""
    return [*platform(), *(m for a in AGREEMENTS for m in agreement_manifests(a))]


def of_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]
