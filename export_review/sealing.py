"""The upgrade's one move on outputs: seal the export files and release bundles written
in clear before they were encrypted at rest (export_review/at_rest.py).

Each file is sealed beside itself and renamed over the plain one, so a run cut short
leaves every file readable, sealed or plain, and running it again finishes it. Digests
are of the content, so the database, the manifests and their signatures stay as they are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from export_review.at_rest import bundle_sealer, export_sealer
from export_review.bundle import MANIFEST, SIGNATURE
from export_review.models import ExportFile, ExportRequest
from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.audit.record import record
from sandbox.keys.files import is_sealed
from sandbox.keys.store import key_store
from sandbox.settings import Settings


def _seal_in_place(path: Path, seal: Callable[[bytes], bytes]) -> bool:
    """Seal ``path`` if it is a plain file still there; whether it was sealed now."""
    if not path.is_file() or is_sealed(data := path.read_bytes()):
        return False
    aside = path.with_name(f".{path.name}.sealing")
    aside.write_bytes(seal(data))
    os.replace(aside, path)
    return True


def seal_plain_outputs(*, session: Session, settings: Settings, actor: User) -> tuple[int, int]:
    """Seal every export file and released bundle's file still in clear, with
    ``export.encrypt`` in the record; how many export files and bundle files."""
    require_role(actor, Role.operator)
    store = key_store(settings)
    files = 0
    for f, agreement_id in session.execute(
        select(ExportFile, ExportRequest.agreement_id)
        .join(ExportRequest, ExportRequest.id == ExportFile.request_id)
        .order_by(ExportFile.id)
    ):
        seal = export_sealer(store, agreement_id, f.request_id, f.name)
        files += _seal_in_place(Path(f.path), seal)
    released = 0
    for bundle_path in session.scalars(
        select(ExportRequest.bundle_path).where(ExportRequest.bundle_path.is_not(None))
    ):
        bundle = Path(bundle_path or "")
        sealer = bundle_sealer(store, bundle.name)
        for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
            name = path.relative_to(bundle).as_posix()
            if name not in (MANIFEST, SIGNATURE):
                released += _seal_in_place(path, partial(sealer, name))
    record(
        session,
        actor=actor.username,
        action="export.encrypt",
        object="exports",
        details={"export_files": files, "bundle_files": released},
    )
    return files, released
