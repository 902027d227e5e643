"""Sensitive fields of the platform's database, sealed with keys from the key store.

Personal data of researchers and provider staff (real names, e-mail addresses, the
subject an identity provider knows a person by) is kept sealed, so a copy of the database,
or of a backup of it, without the key store shows none of it (Rizhao Art.29; PIPL Art.51).
Each kind of field (``purpose``: its ``table.column``) has a data key of its own in the key
store (``fields/<purpose>.json``, re-wrapped by rotation like every data key).

A value is sealed with AES-256-GCM from ``cryptography`` under a random nonce and bound to
its purpose: stored as ``s1:`` and the base64 of the nonce, the ciphertext and its tag. A
field looked up by equality gets a blind index beside it: HMAC-SHA256 of the value under
a key of the index's own, so equal values find each other and nothing else is learnt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sandbox.errors import Kind, SandboxError
from sandbox.keys.store import ARTICLE, NONCE_BYTES, KeyStore, field_key

#: What every sealed value starts with: the scheme (AES-256-GCM, one key per purpose).
PREFIX = "s1:"
INDEX_SUFFIX = ".index"


class FieldUnreadable(SandboxError):
    """A sealed field does not open: altered, copied from another column, or its key is
    not this key store's."""

    rule = "field-unreadable"
    article = ARTICLE
    kind = Kind.internal


def is_sealed(stored: str) -> bool:
    """Whether ``stored`` is a value :meth:`FieldKeys.seal` made."""
    return stored.startswith(PREFIX)


class FieldKeys:
    """Seals, opens and indexes field values with the key store's field keys, each key
    unwrapped once per process (values are opened at every row a query loads)."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _key(self, purpose: str) -> bytes:
        with self._lock:
            if purpose not in self._keys:
                self._keys[purpose] = self.store.data_key_or_create(field_key(purpose))
            return self._keys[purpose]

    def seal(self, purpose: str, value: str) -> str:
        """``value`` encrypted and bound to ``purpose``, as text."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self._key(purpose)).encrypt(nonce, value.encode(), purpose.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, purpose: str, stored: str) -> str:
        """What :meth:`seal` sealed for ``purpose``; refused if it was sealed otherwise."""
        if not is_sealed(stored):
            raise FieldUnreadable(
                f"a value of {purpose} is not sealed: the database was not upgraded to "
                "migration 0011, or the value was written around the platform"
            )
        raw = base64.b64decode(stored[len(PREFIX) :])
        try:
            plain = AESGCM(self._key(purpose)).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode()
            )
        except InvalidTag:
            raise FieldUnreadable(
                f"a value of {purpose} does not open with this key store's key: it was "
                "altered or copied from another column, or the key store is another one"
            ) from None
        return plain.decode()

    def index(self, purpose: str, value: str) -> str:
        """The blind index of ``value`` in ``purpose``: equal values, equal indexes."""
        key = self._key(purpose + INDEX_SUFFIX)
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
