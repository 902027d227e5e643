"""Uploads waiting between "preview" and "publish", each in its own directory.

A provider's file is kept under ``data_dir/uploads/<random id>/file/`` by its
own name (without folders), with how to read it as chosen on the form — never
in a URL or a page, only its id — until it is published or abandoned. The id is
128 random bits, so one provider cannot guess another's upload; the directory
is removed after publishing, and any upload left for a day is removed at the
next upload.

The file is kept sealed under a data key of its own from the key store
(:meth:`sandbox.keys.store.KeyStore.seal`) and read decrypted in memory, so a copy of
the data directory shows none of it (Rizhao Art.29); removing the upload destroys the key.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import BinaryIO

from sandbox.catalog.reading import (
    SUPPORTED_SUFFIXES,
    Encoding,
    ReadOptions,
    Upload,
    upload_name,
)
from sandbox.errors import NotFound, ValidationFailed
from sandbox.keys.store import key_store, upload_key
from sandbox.settings import Settings

MAX_AGE_SECONDS = 24 * 3600
ENTRY_FILE = "entry.yaml"
OPTIONS_FILE = "read.json"
_ID = re.compile(r"^[0-9a-f]{32}$")


def _root(settings: Settings) -> Path:
    return settings.data_dir / "uploads"


def _folder(settings: Settings, upload_id: str) -> Path:
    folder = _root(settings) / upload_id
    if not _ID.match(upload_id) or not folder.is_dir():
        raise NotFound("this upload does not exist or has expired; upload the file again",
                       rule="upload-unknown")  # fmt: skip
    return folder


def stage(settings: Settings, filename: str, content: BinaryIO, options: ReadOptions) -> str:
    """Keep an uploaded file and how to read it, and return its id; refuse file types the
    catalogue cannot read."""
    name = upload_name(filename)
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValidationFailed(
            f"unsupported file type {suffix or '(none)'!r}; upload one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}",
            rule="upload-format",
            article="Shanghai Art.12; Wuxi Art.13",
        )
    discard_abandoned(settings)
    upload_id = secrets.token_hex(16)
    folder = _root(settings) / upload_id
    (folder / "file").mkdir(parents=True)
    sealed = key_store(settings).seal(upload_key(upload_id), content.read())
    (folder / "file" / name).write_bytes(sealed)
    chosen = {"encoding": options.encoding.value, "header_row": options.header_row}
    (folder / OPTIONS_FILE).write_text(json.dumps(chosen), encoding="utf-8")
    return upload_id


def data_file(settings: Settings, upload_id: str) -> Path:
    """The upload's file as kept, sealed: its name is the provider's."""
    return next((_folder(settings, upload_id) / "file").iterdir())


def upload(settings: Settings, upload_id: str) -> Upload:
    """The upload's name and bytes, decrypted in memory."""
    kept = data_file(settings, upload_id)
    return Upload(kept.name, key_store(settings).unseal(upload_key(upload_id), kept.read_bytes()))


def read_options(settings: Settings, upload_id: str) -> ReadOptions:
    """How the provider chose to read the upload."""
    chosen = json.loads((_folder(settings, upload_id) / OPTIONS_FILE).read_text(encoding="utf-8"))
    return ReadOptions(Encoding(chosen["encoding"]), chosen["header_row"])


def entry_file(settings: Settings, upload_id: str) -> Path:
    """Where the previewed catalogue entry is kept, so exactly what was previewed is published."""
    return _folder(settings, upload_id) / ENTRY_FILE


def discard(settings: Settings, upload_id: str) -> None:
    _remove(settings, _folder(settings, upload_id))


def _remove(settings: Settings, folder: Path) -> None:
    """Destroy the upload's key, then its folder: from then on no copy of the file opens."""
    if _ID.match(folder.name):
        key_store(settings).destroy_data_key(upload_key(folder.name))
    shutil.rmtree(folder, ignore_errors=True)


def discard_abandoned(settings: Settings) -> None:
    root = _root(settings)
    if not root.is_dir():
        return
    cutoff = time.time() - MAX_AGE_SECONDS
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            _remove(settings, folder)
