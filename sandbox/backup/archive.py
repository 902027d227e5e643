"""The backup archive: a tar file whose first member is a manifest of SHA-256s,
encrypted to the operator's public key (:mod:`sandbox.backup.crypto`).

Writing goes to a temporary file renamed into place at the end, and reading
checks every member against the manifest before anything is used, so an
interrupted backup leaves no archive and a damaged one restores nothing. The
plain tar of an encrypted backup is built in a staging directory inside the
data directory (which holds the same data in the clear anyway), so nothing
readable is ever written where backups are kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from sandbox.backup import crypto
from sandbox.errors import ValidationFailed

FORMAT = "sandbox-backup/1"
MANIFEST = "manifest.json"
ARTICLE = "Rizhao Art.29; Putuo Art.32"
#: The only member names an archive may hold besides the manifest.
#: Export and release file names are plain names (``export_review.requests._store``)
#: that never start with a dot, so no member can climb out of its folder.
MEMBER = re.compile(
    r"^(database\.sqlite|database\.pgdump|datasets/[A-Za-z_][A-Za-z0-9_]*/v[0-9]+\.parquet"
    r"|keys/[A-Za-z0-9][A-Za-z0-9._-]*"
    r"|exports/[0-9]+/[^/\x00.][^/\x00]*"
    r"|releases/[A-Za-z0-9][A-Za-z0-9._-]*/"
    r"(manifest\.json|manifest\.sig|CITATION\.txt|files/[^/\x00.][^/\x00]*))$"
)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Member:
    """A file going into the archive: where it is now, and its name inside."""

    source: Path
    name: str
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def member(source: Path, name: str) -> Member:
    if not MEMBER.match(name):
        raise ValidationFailed(f"{name!r} is not a name a backup may hold", rule="backup-member")
    return Member(source, name, sha256_of(source), source.stat().st_size)


def write_archive(
    out: Path,
    manifest: dict[str, Any],
    members: list[Member],
    *,
    recipients: Sequence[crypto.Recipient],
    staging: Path,
) -> None:
    """Write ``out`` atomically, encrypted to ``recipients`` (plain only when there are none).

    ``staging`` is a private directory for the plain tar of an encrypted backup.
    """
    manifest = {
        **manifest,
        "format": FORMAT,
        "files": {m.name: {"sha256": m.sha256, "bytes": m.size} for m in members},
    }
    if not recipients:
        with _atomic(out) as raw:
            _write_tar(raw, manifest, members)
        return
    plain = staging / "archive.tar.gz"
    try:
        with plain.open("xb") as raw:
            _write_tar(raw, manifest, members)
        with _atomic(out) as raw:
            crypto.encrypt(plain, raw, recipients)
    finally:
        plain.unlink(missing_ok=True)


def _write_tar(raw: IO[bytes], manifest: dict[str, Any], members: list[Member]) -> None:
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
        for m in members:
            with m.source.open("rb") as f:
                info = tarfile.TarInfo(m.name)
                info.size, info.mode = m.size, 0o600
                tar.addfile(info, f)


@contextmanager
def _atomic(out: Path) -> Iterator[IO[bytes]]:
    """A temporary file beside ``out``, synced and renamed to ``out`` if the block succeeds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            yield raw
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)


def extract_verified(
    archive: Path, into: Path, identities: Sequence[crypto.Identity] = ()
) -> dict[str, Any]:
    """Extract every member into the directory ``into``, checked against the manifest.

    An encrypted archive is first decrypted beside ``into`` with ``identities``
    (refused when none of them opens it). Refuses (``backup-integrity``)
    an archive that fails decryption, has a member the manifest does not list, a
    listed member missing, a hash that differs, or an unexpected name; the
    caller discards ``into`` and what is beside it then.
    """
    if not crypto.is_encrypted(archive):
        return _extract_tar(archive, into, archive.name)
    plain = into.with_name(f"{into.name}.tar.gz")
    try:
        crypto.decrypt(archive, plain, identities)
        return _extract_tar(plain, into, archive.name)
    finally:
        plain.unlink(missing_ok=True)


def _extract_tar(archive: Path, into: Path, label: str) -> dict[str, Any]:
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                _broken(f"{label} does not start with {MANIFEST}")
            manifest = json.loads(tar.extractfile(first).read())  # type: ignore[union-attr]
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                _broken(f"{label} is not a {FORMAT} archive")
            expected = dict(manifest["files"])
            while (info := tar.next()) is not None:
                spec = expected.pop(info.name, None)
                if spec is None or not info.isfile() or not MEMBER.match(info.name):
                    _broken(f"{info.name!r} is in the archive but not in its manifest")
                _extract(tar, info, into / info.name, spec["sha256"])
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError) as exc:
        _broken(f"{label} cannot be read ({type(exc).__name__}: {exc})")
    if expected:
        _broken(f"the manifest lists files the archive lacks: {', '.join(sorted(expected))}")
    return manifest


def _extract(tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path, sha256: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    source = tar.extractfile(info)
    assert source is not None  # a regular file always has content
    with path.open("wb") as f:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            f.write(chunk)
    if digest.hexdigest() != sha256:
        _broken(f"{info.name} does not match the SHA-256 in the manifest")


def _broken(message: str) -> NoReturn:
    raise ValidationFailed(message, rule="backup-integrity", article=ARTICLE)
