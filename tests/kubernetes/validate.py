"""A manifest is valid when two independent readings of the Kubernetes API accept it whole:
the API's OpenAPI schema in strict form (kubernetes-validate, offline: unknown fields are
errors) and the typed models of the Python client KubeSpawner uses (a round trip through
them loses nothing, so no field is misspelt, misplaced or of the wrong type)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass

import kubernetes_validate
from kubernetes_asyncio.client import ApiClient

#: The Kubernetes release whose API the manifests are checked against.
KUBERNETES_VERSION = "1.33.0"

#: Names of most objects are DNS-1123 labels (Services must also start with a letter).
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


@dataclass
class _Response:
    """What ``ApiClient.deserialize`` reads: the body of an API answer."""

    data: str


def _model(manifest: dict) -> str:
    return manifest["apiVersion"].split("/")[-1].capitalize() + manifest["kind"]


def assert_valid(manifest: dict) -> None:
    """Raise unless the API's schema and the client's models both accept ``manifest``."""
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    lost = _differences(manifest, asyncio.run(_round_trip(manifest)))
    assert not lost, f"{_model(manifest)} does not hold: {lost}"
    name = manifest["metadata"]["name"]
    assert len(name) <= 63 and _DNS_LABEL.fullmatch(name), f"bad object name {name!r}"
    labels = dict(manifest["metadata"].get("labels", {}))
    for template in _pod_templates(manifest):
        labels.update(template["metadata"].get("labels", {}))
    for key, value in labels.items():
        assert len(value) <= 63 and _LABEL_VALUE.fullmatch(value), f"bad label {key}={value!r}"


async def _round_trip(manifest: dict) -> dict:
    async with ApiClient() as client:  # its HTTP session needs a loop, and is never used
        model = client.deserialize(_Response(json.dumps(manifest)), _model(manifest))
        return client.sanitize_for_serialization(model)


def _differences(given: object, kept: object, path: str = "") -> list[str]:
    """Where ``kept`` differs from ``given`` (the paths, not the values)."""
    if isinstance(given, dict) and isinstance(kept, dict):
        keys = sorted(set(given) | set(kept))
        return [d for k in keys for d in _differences(given.get(k), kept.get(k), f"{path}.{k}")]
    if isinstance(given, list) and isinstance(kept, list) and len(given) == len(kept):
        pairs = enumerate(zip(given, kept, strict=True))
        return [d for i, (g, k) in pairs for d in _differences(g, k, f"{path}[{i}]")]
    if isinstance(given, int | float) and not isinstance(given, bool) and kept == str(given):
        return []  # a quantity given as a JSON number, which the API reads as its text
    return [] if given == kept else [path or "."]


def _pod_templates(manifest: dict) -> list[dict]:
    template = manifest.get("spec", {}).get("template")
    return [template] if template else []
