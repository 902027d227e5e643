"""Backups encrypted at rest to the operator's public key, in the age format.

A backup holds personal data and keys (R13: Rizhao Art.29; Putuo Art.32), and
the platform that writes it must not be able to read it back (R16: operators
run the platform without reading the data). So the platform holds only a
public key (``SANDBOX_BACKUP_RECIPIENT``); the private key file made by
``sandbox backup-keygen`` stays with whoever restores.

No cryptography is written here: the format is age v1
(https://age-encryption.org/v1: X25519 key agreement, HKDF-SHA-256,
ChaCha20-Poly1305 over 64 KiB chunks, the last chunk marked as last),
implemented by pyrage, the Python binding of the reviewed Rust ``age`` crate.
An archive therefore also opens with the ``age`` tool. Because every chunk is
authenticated and the last one is flagged, a changed byte, a cut-off end or
extra bytes are refused; decryption streams into a file the caller discards on
any refusal, so nothing decrypted is used before the whole archive checked out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NoReturn

import pyrage
from pyrage import x25519

from sandbox.errors import Conflict, SandboxError, ValidationFailed

#: The first bytes of every age v1 file; a plain backup starts with gzip's magic instead.
HEADER = b"age-encryption.org/v1\n"
PRIVATE_KEY_FILE = "backup.key"
PUBLIC_KEY_FILE = "backup.pub"
#: Encryption is one of the technical safeguards (R13); the platform must not read
#: what it backs up (R16).
ARTICLE = "Rizhao Art.29, 31; Putuo Art.32"

Recipient = x25519.Recipient
Identity = x25519.Identity


@dataclass(frozen=True)
class KeyPair:
    """Where ``sandbox backup-keygen`` wrote the pair, and the public key to configure."""

    private_key: Path
    public_key: Path
    recipient: str


def generate_key_pair(out_dir: Path) -> KeyPair:
    """Write a new pair into ``out_dir``: the private key (mode 0600) and the public key.

    Never overwrites: a replaced private key would make every earlier backup
    unreadable.
    """
    private, public = out_dir / PRIVATE_KEY_FILE, out_dir / PUBLIC_KEY_FILE
    for path in (private, public):
        if path.exists():
            raise Conflict(
                f"{path} already exists; write a new key pair into another directory",
                rule="backup-keygen-exists",
            )
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = Identity.generate()
    recipient = str(identity.to_public())
    created = datetime.now(UTC).isoformat(timespec="seconds")
    # The layout age-keygen writes, so the age tool reads the file too.
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
    public.write_text(recipient + "\n", encoding="ascii")
    return KeyPair(private, public, recipient)


def parse_recipients(text: str) -> list[Recipient]:
    """The ``age1…`` public keys in ``text``, separated by commas or white space."""
    recipients = []
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        try:
            recipients.append(Recipient.from_str(item))
        except pyrage.RecipientError:
            raise ValidationFailed(
                f"{item!r} is not an age public key (age1…); configure the one "
                "`sandbox backup-keygen` printed",
                rule="backup-recipient",
                article=ARTICLE,
            ) from None
    return recipients


def load_identities(path: Path) -> list[Identity]:
    """The private keys in an age identity file (``backup.key``, or one from age-keygen)."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            f"cannot read the private key file {path} ({type(exc).__name__})",
            rule="backup-key-missing",
            article=ARTICLE,
        ) from None
    identities = []
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(Identity.from_str(line))
        except pyrage.IdentityError:
            # The line is never echoed: it may be a secret with a typo.
            raise ValidationFailed(
                f"{path} holds a line that is not an age private key (AGE-SECRET-KEY-1…)",
                rule="backup-key-invalid",
                article=ARTICLE,
            ) from None
    if not identities:
        raise ValidationFailed(
            f"{path} holds no private key", rule="backup-key-invalid", article=ARTICLE
        )
    return identities


def is_encrypted(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(HEADER)) == HEADER


def encrypt(plain: Path, out: BinaryIO, recipients: Sequence[Recipient]) -> None:
    """Stream the file ``plain`` into ``out``, readable only with a recipient's private key."""
    with plain.open("rb") as src:
        pyrage.encrypt_io(src, out, list(recipients))


def decrypt(archive: Path, out: Path, identities: Sequence[Identity]) -> None:
    """Decrypt ``archive`` into the new file ``out`` (mode 0600).

    On a refusal ``out`` holds an unauthenticated prefix: the caller removes it.
    """
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with archive.open("rb") as src, os.fdopen(fd, "wb") as dst:
            pyrage.decrypt_io(src, dst, list(identities))
    except pyrage.DecryptError as exc:
        if "no matching keys" in str(exc).lower():
            raise ValidationFailed(
                f"the private key given does not open {archive.name}: it was encrypted to "
                "another public key (or its header was altered)",
                rule="backup-wrong-key",
                article=ARTICLE,
            ) from None
        _altered(archive, str(exc))
    except OSError as exc:
        if exc.errno is not None:  # the disk, not the archive
            raise SandboxError(
                f"cannot decrypt {archive.name}: {exc.strerror}", rule="backup-io"
            ) from None
        _altered(archive, str(exc))


def _altered(archive: Path, reason: str) -> NoReturn:
    raise ValidationFailed(
        f"{archive.name} fails authenticated decryption ({reason}): a byte was changed, "
        "or the file was cut short or extended",
        rule="backup-integrity",
        article=ARTICLE,
    )
