"""Data keys, wrapped by a master key, in a directory apart from the data they open.

A stolen data directory without this store reveals no row of an agreement's database or of
a dataset version (Rizhao Art.29), and destroying a wrapped key leaves every copy of what it
encrypted unreadable, backups included (crypto-shredding; R16, Rizhao Art.31). Layout of
``root``::

    masters/<id>.json           a master key and its algorithm (mode 0600)
    masters/current             the id of the master key that wraps new and re-wrapped keys
    agreements/<id>.json        an agreement's data key (its DuckDB database)
    datasets/<id>-v<n>.json     a dataset version's data key (its Parquet file)
    uploads/<id>.json           a provider's upload's data key, while it waits to be published
    fields/<purpose>.json       the key of one kind of sensitive field in the platform's
                                database (e.g. ``users.email``; sandbox/keys/fields.py)
    releases/<bundle>.json      a release bundle's data key (its files; sandbox/keys/files.py)

Wrapping is AES-256-GCM, or SM4-GCM where GB/T 22239 (等保 2.0) expects SM4, both from
``cryptography``: no cipher is written here. Each wrapped key is bound to its name and
master key, so a file copied under another name does not open. Rotation
re-wraps every data key under a new master key, then destroys the old ones: data keys,
and so the databases they open, stay as they are.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sandbox.contracts.agreement import AGREEMENT_ID
from sandbox.errors import ContractError, Kind, NotFound, SandboxError
from sandbox.settings import Settings

WrapAlgorithm = Literal["aes-256-gcm", "sm4-gcm"]
#: Master key length per wrapping algorithm (SM4 has 128-bit keys only).
MASTER_KEY_BYTES: dict[str, int] = {"aes-256-gcm": 32, "sm4-gcm": 16}
#: A data key is an AES-256 key: DuckDB encrypts its files with AES-256-GCM.
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
#: What :meth:`KeyStore.seal` encrypts files with: DuckDB's files are AES-256-GCM too.
DATA_CIPHER = "aes-256-gcm"
TAG_BYTES = 16
ARTICLE = "Rizhao Art.29, 31"


class DataKeyMissing(NotFound):
    """No data key: never made, or destroyed (the agreement ended, the data was withdrawn)."""

    rule = "at-rest-key-missing"
    article = ARTICLE


class KeyStoreUnreadable(SandboxError):
    """A wrapped key does not open: altered, or its master key is gone."""

    rule = "key-store-unreadable"
    article = ARTICLE
    kind = Kind.internal


@dataclass(frozen=True)
class Rotation:
    """What ``rotate`` did: the new master key, the ones destroyed, the keys re-wrapped."""

    master: str
    algorithm: str
    destroyed: list[str]
    rewrapped: int


def encrypt(algorithm: str, key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """A random nonce, and ``plaintext`` sealed under ``key`` (AES-256-GCM or SM4-GCM)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    if algorithm == "aes-256-gcm":
        return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    return nonce, encryptor.update(plaintext) + encryptor.finalize() + encryptor.tag


def decrypt(algorithm: str, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    """``sealed`` (ciphertext, tag) opened; raises :class:`InvalidTag` if made otherwise."""
    if algorithm == "aes-256-gcm":
        return AESGCM(key).decrypt(nonce, sealed, aad)
    body, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(body) + decryptor.finalize()


def _aad(name: str, master: str, algorithm: str) -> bytes:
    return f"sandbox data key|{name}|{master}|{algorithm}".encode()


#: Key kinds: folder in the store -> what its keys open, as refusals name it.
KINDS = {
    "agreements": "agreement",
    "datasets": "dataset version",
    "uploads": "upload",
    "fields": "database field",
    "releases": "release bundle",
}


@dataclass(frozen=True)
class KeyRef:
    """Which data key: the folder of its kind and its name there, which its wrapping is
    bound to (agreement ids and dataset-version names never look alike)."""

    folder: str
    name: str

    def describe(self) -> str:
        return f"{KINDS[self.folder]} {self.name}"


def agreement_key(agreement_id: str) -> KeyRef:
    """The data key of an agreement's database."""
    if not AGREEMENT_ID.match(agreement_id):
        raise ContractError(
            f"agreement id {agreement_id!r} is not a valid agreement id", rule="agreement"
        )
    return KeyRef("agreements", agreement_id)


def dataset_version_key(dataset_id: int, version: int) -> KeyRef:
    """The data key of a dataset version's file, named by the dataset's row id (names may be
    Chinese) and the version number, both known before the version's row is written."""
    return KeyRef("datasets", f"{dataset_id}-v{version}")


def upload_key(upload_id: str) -> KeyRef:
    """The data key of a provider's upload waiting to be published (its id is random hex)."""
    return KeyRef("uploads", upload_id)


def field_key(purpose: str) -> KeyRef:
    """The key of one kind of sensitive field of the platform's database (``table.column``,
    or ``table.column.index`` for its blind index): one key per purpose, so a value copied
    into another column does not open, and an index says nothing about another column."""
    return KeyRef("fields", purpose)


def _ref(key: str | KeyRef) -> KeyRef:
    return key if isinstance(key, KeyRef) else agreement_key(key)


def _aad_of(key: KeyRef) -> bytes:
    return f"sandbox sealed file|{key.folder}|{key.name}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _write_new(path: Path, text: str, *, replace: bool) -> None:
    """Write ``path`` whole (mode 0600): aside first, then linked (``replace=False``: never
    over an existing file) or renamed into place, so no reader sees half a key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    try:
        if replace:
            os.replace(aside, path)
        else:
            os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)


def _shred(path: Path) -> bool:
    """Overwrite and delete ``path``; whether it was there."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with open(path, "r+b") as f:
        f.write(b"\0" * size)
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
    return True


@dataclass(frozen=True)
class KeyStore:
    """The key store at ``root``; new master keys wrap with ``algorithm``."""

    root: Path
    algorithm: WrapAlgorithm = "aes-256-gcm"

    @property
    def _masters(self) -> Path:
        return self.root / "masters"

    def _wrapped_path(self, key: KeyRef) -> Path:
        return self.root / key.folder / f"{key.name}.json"

    def _master(self, master: str) -> tuple[str, bytes]:
        try:
            held = json.loads((self._masters / f"{master}.json").read_text(encoding="ascii"))
        except FileNotFoundError:
            raise KeyStoreUnreadable(
                f"master key {master} is not in the key store at {self.root}"
            ) from None
        return held["algorithm"], base64.b64decode(held["key"])

    def current_master(self) -> str:
        """The id of the master key in use, made on first use."""
        pointer = self._masters / "current"
        if not pointer.exists():
            # Another process may make the first master key at the same moment: theirs is
            # current, and ours, never used, goes at the next rotation.
            with contextlib.suppress(FileExistsError):
                _write_new(pointer, self._new_master(), replace=False)
        return pointer.read_text(encoding="ascii").strip()

    def _new_master(self) -> str:
        master = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        key = secrets.token_bytes(MASTER_KEY_BYTES[self.algorithm])
        held = json.dumps({"algorithm": self.algorithm, "key": _b64(key)})
        _write_new(self._masters / f"{master}.json", held, replace=False)
        return master

    def _wrap(self, key: KeyRef, data_key: bytes, master: str) -> str:
        algorithm, sealing = self._master(master)
        nonce, sealed = encrypt(algorithm, sealing, data_key, _aad(key.name, master, algorithm))
        wrapped = {"master": master, "algorithm": algorithm, "nonce": _b64(nonce)}
        return json.dumps(wrapped | {"sealed": _b64(sealed)})

    def data_key(self, key: str | KeyRef) -> bytes:
        """The data key of ``key`` (a :class:`KeyRef`, or an agreement's id), unwrapped with
        the master key that wrapped it."""
        ref = _ref(key)
        try:
            wrapped = json.loads(self._wrapped_path(ref).read_text(encoding="ascii"))
        except FileNotFoundError:
            raise DataKeyMissing(
                f"{ref.describe()} has no data key in the key store: it was never made, or "
                "it was destroyed when the agreement ended or the data was withdrawn or "
                "discarded; what it encrypted cannot be opened (provision an active "
                "agreement again)"
            ) from None
        master = wrapped["master"]
        algorithm, sealing = self._master(master)
        try:
            return decrypt(
                algorithm,
                sealing,
                base64.b64decode(wrapped["nonce"]),
                base64.b64decode(wrapped["sealed"]),
                _aad(ref.name, master, algorithm),
            )
        except InvalidTag:
            raise KeyStoreUnreadable(
                f"the data key of {ref.describe()} does not open with master key {master}: "
                "the wrapped key was altered or belongs to another name"
            ) from None

    def has_data_key(self, key: str | KeyRef) -> bool:
        """Whether ``key`` has a wrapped data key (files written before encryption have none)."""
        return self._wrapped_path(_ref(key)).is_file()

    def data_key_or_create(self, key: str | KeyRef) -> bytes:
        """The data key of ``key``, made (random, from the OS) and wrapped on first use."""
        ref = _ref(key)
        path = self._wrapped_path(ref)
        if not path.exists():
            data_key = secrets.token_bytes(DATA_KEY_BYTES)
            wrapped = self._wrap(ref, data_key, self.current_master())
            # Made at the same moment by another writer: theirs is the key.
            with contextlib.suppress(FileExistsError):
                _write_new(path, wrapped, replace=False)
        return self.data_key(ref)

    def adopt_data_key(self, key: KeyRef, old: Path) -> None:
        """Wrap the key an earlier version kept in clear in the file ``old``, if it is
        there, as the data key of ``key`` (unless it has one), then overwrite and delete
        the file. Run once, at the first use after an upgrade."""
        try:
            data_key = old.read_bytes()
        except FileNotFoundError:
            return
        # Adopted at the same moment by another process: the same key.
        with contextlib.suppress(FileExistsError):
            wrapped = self._wrap(key, data_key, self.current_master())
            _write_new(self._wrapped_path(key), wrapped, replace=False)
        with contextlib.suppress(FileNotFoundError):  # or it shreds the file too
            _shred(old)

    def seal(self, key: KeyRef, data: bytes) -> bytes:
        """``data`` encrypted under the data key of ``key`` (made on first use) with
        AES-256-GCM, bound to its name: the nonce, then the ciphertext and its tag. For a
        file no encrypting format reads (an upload as the provider's system wrote it)."""
        nonce, sealed = encrypt(DATA_CIPHER, self.data_key_or_create(key), data, _aad_of(key))
        return nonce + sealed

    def unseal(self, key: KeyRef, sealed: bytes) -> bytes:
        """What :meth:`seal` sealed under ``key``; refused if it was sealed otherwise."""
        nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        try:
            return decrypt(DATA_CIPHER, self.data_key(key), nonce, body, _aad_of(key))
        except InvalidTag:
            raise KeyStoreUnreadable(
                f"the file of {key.describe()} does not open with its data key: it was "
                "altered, or sealed under another name"
            ) from None

    def destroy_data_key(self, key: str | KeyRef) -> bool:
        """Overwrite and delete the wrapped data key of ``key``; whether there was one."""
        return _shred(self._wrapped_path(_ref(key)))

    def rotate(self) -> Rotation:
        """Wrap every data key under a new master key, then destroy the former masters.

        Each key is re-wrapped by a rename, and names its master, so a rotation cut short
        leaves every key readable; running it again finishes it. Run it while nothing is
        being provisioned: a key made under the old master while it runs would be lost.
        """
        self.current_master()
        master = self._new_master()
        # New keys are wrapped under the new master from here on; then every other one is.
        _write_new(self._masters / "current", master, replace=True)
        refs = [KeyRef(f, p.stem) for f in KINDS for p in sorted((self.root / f).glob("*.json"))]
        for ref in refs:
            data_key = self.data_key(ref)
            _write_new(self._wrapped_path(ref), self._wrap(ref, data_key, master), replace=True)
        destroyed = [p.stem for p in self._masters.glob("*.json") if p.stem != master]
        for old in destroyed:
            _shred(self._masters / f"{old}.json")
        return Rotation(master, self.algorithm, sorted(destroyed), len(refs))


def key_store(settings: Settings) -> KeyStore:
    """The platform's key store, as configured."""
    return KeyStore(settings.key_store_path, settings.key_wrap_algorithm)
