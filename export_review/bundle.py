"""Release bundles: approved files with a signed manifest of where they came from.

A bundle is a directory holding the released files under ``files/``,
``CITATION.txt``, ``manifest.json`` (agreement, datasets and versions,
citation, DP parameters and budget left, check results, reviewers, times and
the SHA-256 of every file) and ``manifest.sig``, an Ed25519 signature over the
manifest's canonical JSON. It is written into a temporary directory and
renamed into place, so a half-written bundle never exists. On the platform every file but
the manifest and its signature is kept sealed (export_review/at_rest.py): ``seal`` seals
each file as it is written, and the manifest holds the digests of the content, which
:func:`verify_bundle` checks after ``open_file`` opens each file. Every product
built on the data names its source (R8: Shanghai Art.25); provenance is part
of the full-process record (R7: Shanghai Art.19-20).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry
from sandbox.errors import Conflict, SandboxError, ValidationFailed
from sandbox.keys.files import is_sealed

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CITATION = "CITATION.txt"
FILES = "files"
FORMAT = "sandbox-release/1"
#: Seals or opens one file of a bundle, named by its path in the bundle.
FileCipher = Callable[[str, bytes], bytes]


def citation_text(agreement: Agreement, catalog: Mapping[str, CatalogEntry]) -> str:
    """The source statement every product built on the data must carry (Shanghai Art.25)."""
    sources = "; ".join(
        f"{catalog[n].title} ({n}), {catalog[n].provider}" for n in agreement.datasets
    )
    return (
        f"数据来源：{sources}。经数据沙箱依数据利用协议 {agreement.id} 有条件开放，"
        f"依《上海市数据条例》第二十五条注明来源。\n"
        f"Source: {sources}. Conditional-access public data used in the data sandbox "
        f"under agreement {agreement.id} ({agreement.title}); cited per Shanghai Art.25.\n"
    )


def canonical(manifest: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(manifest, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


@dataclass(frozen=True)
class BundleContent:
    """What the manifest records besides the files themselves."""

    dataset_versions: Mapping[str, str]
    checks: Mapping[str, Any]
    reviewers: Sequence[Mapping[str, str]]
    dp: Mapping[str, Any] | None = None
    submitted_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def write_bundle(
    destination: Path,
    files: Sequence[Path],
    *,
    agreement: Agreement,
    catalog: Mapping[str, CatalogEntry],
    content: BundleContent,
    key: Ed25519PrivateKey,
    seal: FileCipher = lambda _, data: data,
) -> Path:
    """Write a signed bundle at ``destination`` (which must not exist yet) and return it,
    each file but the manifest and its signature written as ``seal`` makes it."""
    destination = Path(destination)
    if destination.exists():
        raise Conflict(f"{destination}: a bundle of that name already exists", rule="bundle-exists")
    names = [Path(f).name for f in files]
    if len(set(names)) != len(names):
        raise ValidationFailed("released files must have distinct names", rule="bundle-files")
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    digests: dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        digests[name] = hashlib.sha256(data).hexdigest()
        (tmp / name).write_bytes(seal(name, data))

    try:
        (tmp / FILES).mkdir()
        for f in files:
            put(f"{FILES}/{Path(f).name}", Path(f).read_bytes())
        put(CITATION, citation_text(agreement, catalog).encode("utf-8"))
        manifest = {
            "format": FORMAT,
            "agreement": {
                "id": agreement.id,
                "title": agreement.title,
                "provider": agreement.provider,
                "purpose": agreement.purpose,
            },
            "datasets": {
                n: {
                    "version": content.dataset_versions.get(n, "unknown"),
                    "provider": catalog[n].provider,
                }
                for n in agreement.datasets
            },
            "citation": citation_text(agreement, catalog),
            "dp": dict(content.dp) if content.dp else None,
            "checks": dict(content.checks),
            "reviewers": [dict(r) for r in content.reviewers],
            "submitted_at": content.submitted_at.isoformat() if content.submitted_at else None,
            "released_at": datetime.now(UTC).isoformat(),
            "files": dict(sorted(digests.items())),
            **content.extra,
        }
        (tmp / MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
        )
        (tmp / SIGNATURE).write_text(base64.b64encode(key.sign(canonical(manifest))).decode())
        os.rename(tmp, destination)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return destination


def verify_bundle(
    path: Path, public_key: Ed25519PublicKey, open_file: FileCipher | None = None
) -> list[str]:
    """Every problem found: bad signature, changed, added or removed files, and files that
    are sealed (on the platform, opened with ``open_file``) but do not open. Empty means
    intact."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        signature = base64.b64decode((path / SIGNATURE).read_text(), validate=True)
    except (OSError, ValueError) as exc:
        return [f"manifest or signature unreadable: {exc}"]
    try:
        public_key.verify(signature, canonical(manifest))
    except InvalidSignature:
        return [
            "the manifest's signature does not match: the manifest was changed or signed "
            "by another key"
        ]
    listed: dict[str, str] = manifest.get("files", {})
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    present -= {MANIFEST, SIGNATURE}
    problems = [f"file removed: {name}" for name in sorted(set(listed) - present)]
    problems += [f"file added: {name}" for name in sorted(present - set(listed))]
    for name in sorted(set(listed) & present):
        data = (path / name).read_bytes()
        if is_sealed(data):
            if open_file is None:
                problems.append(f"file sealed at rest, verify it on the platform: {name}")
                continue
            try:
                data = open_file(name, data)
            except SandboxError:
                problems.append(f"file does not open with its key: {name}")
                continue
        if hashlib.sha256(data).hexdigest() != listed[name]:
            problems.append(f"file changed: {name}")
    return problems
