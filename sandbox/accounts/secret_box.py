"""Account secrets sealed with a key from the platform's key store (R13 encryption;
Rizhao Art.29), so that neither the platform database nor a copy of the data directory
reveals them.

AES-256-GCM from ``cryptography`` with a random 96-bit nonce per seal, under the data key
of the field ``totp_factors.secret_sealed`` in the key store (``fields/``, wrapped by its
master key and re-wrapped by ``sandbox keys rotate``), apart from the data directory and
its backups. Each sealed value is bound to its context (e.g. ``totp:42`` for user 42's
TOTP secret), so a value copied into another account's row does not open.

Before, the key was a file in the data directory (``keys_dir/account-secrets.key``): the
first use after an upgrade wraps that key into the key store and destroys the file, so
sealed secrets keep opening (:func:`account_key`).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sandbox.keys.store import KeyStore, field_key

#: Where an earlier version kept the key, in ``keys_dir``.
KEY_FILE = "account-secrets.key"
#: The key store's name for the key: the column the sealed secrets are kept in.
KEY = field_key("totp_factors.secret_sealed")
#: The first byte of every sealed value: which scheme and key sealed it (rotation adds 2).
VERSION = b"\x01"
NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A sealed value does not open with the key store's key (another key, or altered)."""


def account_key(store: KeyStore, keys_dir: Path) -> bytes:
    """The sealing key from ``store``, made on first use, or moved in from the file an
    earlier version kept in ``keys_dir``, which is then destroyed."""
    if not store.has_data_key(KEY):
        store.adopt_data_key(KEY, keys_dir / KEY_FILE)
    return store.data_key_or_create(KEY)


def seal(key: bytes, plaintext: bytes, *, context: str) -> bytes:
    """``plaintext`` encrypted and authenticated under ``key``, bound to ``context``."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def unseal(key: bytes, sealed: bytes, *, context: str) -> bytes:
    """What :func:`seal` sealed under the same ``context``; raises :class:`SecretUnreadable`."""
    if sealed[:1] != VERSION:
        raise SecretUnreadable("sealed with an unknown scheme")
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, context.encode())
    except InvalidTag:
        raise SecretUnreadable("does not open with this key store's key") from None
