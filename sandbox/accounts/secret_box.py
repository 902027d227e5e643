"""Account secrets sealed with a key from the platform's key store (R13 encryption;
Rizhao Art.29), so that the platform database alone does not reveal them.

AES-256-GCM from ``cryptography`` with a random 96-bit nonce per seal; the key is
``keys_dir/account-secrets.key`` (mode 0600), apart from the database and its backups of
the database alone. Each sealed value is bound to its context (e.g. ``totp:42`` for user
42's TOTP secret), so a value copied into another account's row does not open.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "account-secrets.key"
#: The first byte of every sealed value: which scheme and key sealed it (rotation adds 2).
VERSION = b"\x01"
NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A sealed value does not open with the key store's key (another key, or altered)."""


def _key(keys_dir: Path) -> bytes:
    """The sealing key, made whole on first use: written aside and linked into place, so
    two processes starting together agree on one key."""
    path = keys_dir / KEY_FILE
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        aside = keys_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(AESGCM.generate_key(bit_length=256))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process made it first; theirs is the key
        finally:
            aside.unlink()
    return path.read_bytes()


def seal(keys_dir: Path, plaintext: bytes, *, context: str) -> bytes:
    """``plaintext`` encrypted and authenticated, bound to ``context``."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return VERSION + nonce + AESGCM(_key(keys_dir)).encrypt(nonce, plaintext, context.encode())


def unseal(keys_dir: Path, sealed: bytes, *, context: str) -> bytes:
    """What :func:`seal` sealed under the same ``context``; raises :class:`SecretUnreadable`."""
    if sealed[:1] != VERSION:
        raise SecretUnreadable("sealed with an unknown scheme")
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(_key(keys_dir)).decrypt(nonce, body, context.encode())
    except InvalidTag:
        raise SecretUnreadable("does not open with this key store's key") from None
