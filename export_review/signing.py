"""The platform's release-signing key: Ed25519, kept in ``keys_dir`` outside any database.

The private key signs release manifests; anyone holding the public key can
check a bundle (R7: Shanghai Art.19-20). The key file is created on first use
with owner-only permissions.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sandbox.errors import ContractError

KEY_FILE = "release_signing.key"


def signing_key_path(keys_dir: Path) -> Path:
    return Path(keys_dir) / KEY_FILE


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the PEM key at ``path``, creating it (mode 0600) if it does not exist."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return key
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ContractError(f"{path}: is not an Ed25519 private key", rule="signing-key")
    return key


def public_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key PEM file, or the public half of a private key PEM file."""
    data = Path(path).read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ContractError(f"{path}: is not an Ed25519 key", rule="signing-key")
    return key
