"""Per-agreement pseudonym keys, kept outside the agreement's database.

A key is random per agreement, so pseudonyms are stable within one agreement
and unlinkable across agreements; destroying it when the agreement ends makes
the pseudonyms of that agreement unlinkable for good (Rizhao Art.29, Art.31).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sandbox.contracts.agreement import AGREEMENT_ID
from sandbox.errors import ContractError, NotFound

KEY_BYTES = 32


def key_path(keys_dir: str | Path, agreement_id: str) -> Path:
    """Where the key of one agreement lives; the id is checked so it cannot name another path."""
    if not AGREEMENT_ID.match(agreement_id):
        raise ContractError(
            f"agreement id {agreement_id!r} is not a valid agreement id", rule="agreement"
        )
    return Path(keys_dir) / f"{agreement_id}.pseudonym.key"


def create_key(keys_dir: str | Path, agreement_id: str) -> bytes:
    """Create the agreement's key (mode 0600); refuse to overwrite an existing one."""
    path = key_path(keys_dir, agreement_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def load_key(keys_dir: str | Path, agreement_id: str) -> bytes:
    path = key_path(keys_dir, agreement_id)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"no pseudonym key for agreement {agreement_id}") from exc


def get_or_create_key(keys_dir: str | Path, agreement_id: str) -> bytes:
    """The agreement's key, created on first use (rebuilds keep pseudonyms stable)."""
    try:
        return load_key(keys_dir, agreement_id)
    except NotFound:
        return create_key(keys_dir, agreement_id)


def destroy_key(keys_dir: str | Path, agreement_id: str) -> bool:
    """Overwrite and delete the key; returns whether there was one."""
    path = key_path(keys_dir, agreement_id)
    if not path.exists():
        return False
    with open(path, "r+b") as f:
        f.write(b"\0" * max(path.stat().st_size, KEY_BYTES))
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
    return True


#: The platform's aggregate-mode noise secret, apart from every agreement: each dataset
#: version's noise key is derived from it (:func:`query_guard.anonymise.noise.dataset_key`),
#: so the same cell is perturbed alike in every agreement and workspace.
NOISE_SECRET_FILE = "aggregate-noise.secret"


def noise_secret(keys_dir: str | Path) -> bytes:
    """The platform's noise secret (mode 0600), created whole on first use: it is written
    aside and linked into place, so a concurrent reader never sees a partial file."""
    path = Path(keys_dir) / NOISE_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        aside = path.with_name(f".{NOISE_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process made it first; theirs is the secret
        finally:
            aside.unlink()
    return path.read_bytes()
