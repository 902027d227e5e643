"""Signed checkpoints: the chain's head, signed with the platform's Ed25519 key.

The operator can rewrite the whole database, recomputing every hash, and even
re-sign the checkpoints stored in it. What the operator cannot rewrite is the
exported checkpoint the authority already keeps: its hash at its ``seq`` will
no longer match. So a checkpoint is exported (:func:`write_checkpoint`) and
handed over each time one is made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.audit.canonical import canonical_bytes, format_instant
from sandbox.audit.models import AuditCheckpoint, AuditEvent
from sandbox.audit.record import take_turn
from sandbox.db.base import utcnow
from sandbox.errors import SandboxError, ValidationFailed

KEY_FILE = "audit_signing.key"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with the public key to check it: the form the authority keeps."""

    seq: int
    hash: str
    at: str
    #: Hex of the Ed25519 signature over ``canonical({seq, hash, at})``.
    signature: str
    #: Hex of the raw 32-byte Ed25519 public key.
    public_key: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str) -> SignedCheckpoint:
        """Read the exported form, naming ``source`` and the field if it is malformed."""
        fields = {"seq": int, "hash": str, "at": str, "signature": str, "public_key": str}
        if not isinstance(data, Mapping) or set(data) != set(fields):
            keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ValidationFailed(
                f"{source}: a checkpoint has exactly the fields {sorted(fields)}, got {keys}"
            )
        for name, kind in fields.items():
            if not isinstance(data[name], kind) or isinstance(data[name], bool):
                raise ValidationFailed(f"{source}: checkpoint field {name} must be {kind.__name__}")
        return cls(**data)

    def signature_problem(self) -> str | None:
        """Why the signature does not verify, or ``None`` when it does."""
        try:
            public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.public_key))
            public_key.verify(
                bytes.fromhex(self.signature), _signed_bytes(self.seq, self.hash, self.at)
            )
        except (ValueError, InvalidSignature):
            return (
                f"the signature of the checkpoint at seq {self.seq} does not verify under "
                f"key {fingerprint_hex(self.public_key)}"
            )
        return None


def load_signing_key(keys_dir: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The platform's signing key from ``keys_dir/audit_signing.key``, made if missing.

    The file is PKCS#8 PEM, mode 0600; a key readable by anyone else is refused,
    since whoever holds it can sign a checkpoint over a rewritten chain.
    """
    path = keys_dir / KEY_FILE
    if not path.exists():
        if not create:
            raise SandboxError(f"no audit signing key at {path}", rule="audit-key")
        _create_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SandboxError(
            f"audit signing key {path} has mode {mode:o}; it must be readable by its owner "
            "only (chmod 600)",
            rule="audit-key",
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SandboxError(f"{path} does not hold an Ed25519 private key", rule="audit-key")
    return key


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key in hex: how checkpoints name the key that signed."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def fingerprint_hex(public_key: str) -> str:
    """``sha256:`` + SHA-256 of the raw public key, the name a key is filed under."""
    return "sha256:" + hashlib.sha256(bytes.fromhex(public_key)).hexdigest()


def make_checkpoint(session: Session, key: Ed25519PrivateKey) -> AuditCheckpoint:
    """Sign the chain's current head in ``session``'s transaction (the caller commits).

    Signing the same head twice returns the checkpoint already made for it.
    """
    take_turn(session)
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if head is None:
        raise SandboxError(
            "the audit record is empty; there is nothing to checkpoint", rule="audit-empty"
        )
    existing = session.get(AuditCheckpoint, head.seq)
    if existing is not None:
        return existing
    at = format_instant(utcnow())
    checkpoint = AuditCheckpoint(
        seq=head.seq,
        hash=head.hash,
        at=at,
        signature=key.sign(_signed_bytes(head.seq, head.hash, at)).hex(),
        key_fingerprint=fingerprint_hex(public_key_hex(key)),
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def signed(checkpoint: AuditCheckpoint, public_key: str) -> SignedCheckpoint:
    """A stored checkpoint paired with the public key it is to be checked against."""
    return SignedCheckpoint(
        seq=checkpoint.seq,
        hash=checkpoint.hash,
        at=checkpoint.at,
        signature=checkpoint.signature,
        public_key=public_key,
    )


def stored_checkpoints(session: Session, public_key: str) -> Iterator[SignedCheckpoint]:
    """Every checkpoint in the database, to be checked against the platform's key."""
    rows = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
    for row in rows:
        yield signed(row, public_key)


def write_checkpoint(checkpoint: SignedCheckpoint, path: Path) -> None:
    path.write_text(json.dumps(checkpoint.to_json(), indent=2) + "\n", encoding="utf-8")


def read_checkpoint(path: Path) -> SignedCheckpoint:
    """A checkpoint file the authority kept, refused with a clear reason if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationFailed(f"{path}: not a readable checkpoint file ({exc})") from exc
    return SignedCheckpoint.from_json(data, source=str(path))


def _signed_bytes(seq: int, hash: str, at: str) -> bytes:
    return canonical_bytes({"seq": seq, "hash": hash, "at": at})


def _create_key_file(path: Path) -> None:
    """Write a new key so that no reader ever sees a half-written file.

    The key goes to a private temporary file that is then hard-linked into
    place; if another process won the race, its key is kept and ours dropped.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit_signing.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        with contextlib.suppress(FileExistsError):  # another process's key won
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
