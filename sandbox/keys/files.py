"""Files the platform keeps for people, sealed at rest under a data key of the key store:
export requests' files and release bundles (export_review/at_rest.py).

A sealed file is a header naming its format and cipher, a random nonce, then the
content encrypted with AES-256-GCM (or SM4-GCM where GB/T 22239, 等保 2.0, expects it:
the key store's ``key_wrap_algorithm``), both from ``cryptography``. The cipher's key is
derived from the data key with HKDF (SHA-256, or SM3 beside SM4) for files of that key
alone, so the same data key can also open a DuckDB database without two uses of one key;
the header and the file's context (which request or bundle, which name) are
authenticated with it, so a file moved to another name or altered does not open.
Destroying the data key leaves every copy unreadable, backups included (crypto-shredding).

The header begins with a NUL byte, which no file passing the export file gate holds (text
only), so a sealed file is never taken for a plain one written before encryption.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sandbox.keys.store import NONCE_BYTES, KeyRef, KeyStore, KeyStoreUnreadable, decrypt, encrypt

MAGIC = b"\x00sandbox-sealed/1 "
#: Cipher -> (key length, HKDF hash).
CIPHERS: dict[str, tuple[int, type[hashes.HashAlgorithm]]] = {
    "aes-256-gcm": (32, hashes.SHA256),
    "sm4-gcm": (16, hashes.SM3),
}


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` is a file :func:`seal_file` made."""
    return data.startswith(MAGIC)


def _file_key(store: KeyStore, key: KeyRef, cipher: str) -> bytes:
    length, digest = CIPHERS[cipher]
    info = f"sandbox sealed files|{key.folder}|{key.name}|{cipher}".encode()
    return HKDF(digest(), length, salt=None, info=info).derive(store.data_key(key))


def _aad(header: bytes, context: str) -> bytes:
    return header + context.encode()


def seal_file(store: KeyStore, key: KeyRef, context: str, data: bytes) -> bytes:
    """``data`` sealed under ``key`` (made on first use) for ``context``, with the store's
    algorithm."""
    store.data_key_or_create(key)
    header = MAGIC + store.algorithm.encode() + b"\n"
    nonce, sealed = encrypt(
        store.algorithm, _file_key(store, key, store.algorithm), data, _aad(header, context)
    )
    return header + nonce + sealed


def open_file(store: KeyStore, key: KeyRef, context: str, data: bytes) -> bytes:
    """What :func:`seal_file` sealed for ``context``; a plain file written before
    encryption as it is. Refused when the key is gone (``at-rest-key-missing``) or the file
    was altered or sealed for another context (``key-store-unreadable``)."""
    if not is_sealed(data):
        return data
    end = data.find(b"\n", len(MAGIC))
    cipher = data[len(MAGIC) : max(end, 0)].decode("ascii", "replace")
    try:
        if cipher not in CIPHERS:
            raise InvalidTag
        header, rest = data[: end + 1], data[end + 1 :]
        key_bytes = _file_key(store, key, cipher)
        return decrypt(
            cipher, key_bytes, rest[:NONCE_BYTES], rest[NONCE_BYTES:], _aad(header, context)
        )
    except InvalidTag:
        raise KeyStoreUnreadable(
            f"the file of {key.describe()} does not open with its data key: it was altered, "
            "or sealed under another name"
        ) from None
