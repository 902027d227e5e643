"""Export requests' files and release bundles at rest, sealed with keys of the key store
(sandbox/keys/files.py), so a copy of the data directory, or of a backup, without the key
store shows nothing of an output (Rizhao Art.29).

- A request's files (``exports/<request id>/<name>``) are sealed under the agreement's
  data key, the one its database is encrypted with: the query worker, which holds that key
  and no other, writes them, and when the agreement ends and the key is destroyed they
  become unreadable with its database, every copy and backup included (R16, Rizhao
  Art.31).
- A bundle (``releases/<agreement>-export-<id>/``) keeps ``manifest.json`` and
  ``manifest.sig`` in clear (what was released, when, by whom, and the SHA-256 of every
  file as released: what the platform's database already records), so its signature and
  file list are checked without a key; every other file is sealed under the bundle's own
  data key (``releases/<bundle>``), which outlives the agreement, since the bundle is the
  provenance record (export_review/retention.py), and is destroyed when it is revoked.
  The digests are of the content, so a bundle verifies when opened on the platform and as
  downloaded, decrypted, by the researcher.

Checks and drawings that read files by path read decrypted copies in a private temporary
folder (:func:`plain_copies`), removed when they are done, as the workspace's pre-check
reads files not yet submitted.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from export_review.bundle import FileCipher
from export_review.models import ExportFile
from sandbox.keys.files import open_file, seal_file
from sandbox.keys.store import KeyRef, KeyStore, agreement_key


def _export_context(request_id: int, name: str) -> str:
    return f"export {request_id}/{name}"


def export_sealer(
    store: KeyStore, agreement_id: str, request_id: int, name: str
) -> Callable[[bytes], bytes]:
    """Seals the content of the request's file ``name`` under the agreement's data key."""
    context = _export_context(request_id, name)
    return lambda data: seal_file(store, agreement_key(agreement_id), context, data)


def write_export_file(
    store: KeyStore, agreement_id: str, request_id: int, path: Path, data: bytes
) -> None:
    """Keep ``data`` at ``path`` sealed under the agreement's data key."""
    path.write_bytes(export_sealer(store, agreement_id, request_id, path.name)(data))


def read_export_file(store: KeyStore, agreement_id: str, f: ExportFile) -> bytes:
    """The content of a request's file (refused once the agreement's key is destroyed)."""
    context = _export_context(f.request_id, f.name)
    return open_file(store, agreement_key(agreement_id), context, Path(f.path).read_bytes())


@contextmanager
def plain_copies(
    store: KeyStore, agreement_id: str, files: Sequence[ExportFile]
) -> Iterator[list[Path]]:
    """Decrypted copies of the request's files still kept (gone when the agreement ended),
    under their names in a private temporary folder removed on leaving."""
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        paths = []
        for f in files:
            if Path(f.path).is_file():
                paths.append(Path(tmp) / f.name)
                paths[-1].write_bytes(read_export_file(store, agreement_id, f))
        yield paths


def bundle_key(bundle: str) -> KeyRef:
    """The data key of the bundle named ``bundle`` (its folder's name)."""
    return KeyRef("releases", bundle)


def bundle_sealer(store: KeyStore, bundle: str) -> FileCipher:
    """Seals each file written into the bundle named ``bundle`` (its key made on first use)."""
    return lambda name, data: seal_file(store, bundle_key(bundle), f"{bundle}/{name}", data)


def bundle_opener(store: KeyStore, bundle: str) -> FileCipher:
    """Opens each sealed file of the bundle named ``bundle``."""
    return lambda name, data: open_file(store, bundle_key(bundle), f"{bundle}/{name}", data)


def bundle_zip(store: KeyStore, bundle: Path) -> bytes:
    """The bundle as a zip with its files opened, built in memory: what is downloaded, and
    what ``sandbox release verify`` checks with the platform's public key alone."""
    opener = bundle_opener(store, bundle.name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
            name = path.relative_to(bundle).as_posix()
            archive.writestr(name, opener(name, path.read_bytes()))
    return out.getvalue()
