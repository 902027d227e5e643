"""What an ended agreement's export requests leave behind (R16, Rizhao Art.31).

Submitted files are workspace files: they are destroyed with the agreement's
database and key. A request still unfinished is withdrawn by the platform first,
since nobody could review files that are gone. They are sealed under the agreement's
data key (export_review/at_rest.py), so once it is destroyed no copy of them opens,
a backup's neither (crypto-shredding): the workspace's destruction destroys it, and
:func:`destroy_ended_exports` an agreement's that never had a workspace, each with
``key.destroy`` in the record. Released bundles stay under ``releases/``, sealed under
keys of their own: their content passed the checks and the provider's review and has
already left the platform, and the bundle is the provenance record (Shanghai Art.25).
The database rows (names, sizes, checksums) stay as the record of what was asked for.
"""

from __future__ import annotations

import shutil

from sqlalchemy import select
from sqlalchemy.orm import Session

from export_review.models import ExportRequest
from export_review.requests import withdraw_for_ended_agreement
from export_review.workflow import ExportStatus
from sandbox.agreements.lifecycle import ENDED
from sandbox.agreements.models import AgreementRecord
from sandbox.audit.record import record
from sandbox.keys.store import agreement_key, key_store
from sandbox.settings import Settings

#: States a request can still leave by review or by its author; withdrawn when the agreement ends.
UNFINISHED = frozenset(
    {ExportStatus.draft, ExportStatus.checked, ExportStatus.in_review, ExportStatus.returned}
)


def destroy_ended_exports(session: Session, settings: Settings) -> dict[str, list[int]]:
    """Withdraw the unfinished requests of every ended agreement, delete the submitted files
    of all its requests and destroy the key they are sealed under if its workspace's end
    did not; ``{agreement id: request ids whose files were deleted}``. Run it after the
    workspaces are destroyed (sandbox.provisioning.service.destroy_ended)."""
    ended = session.execute(
        select(ExportRequest, AgreementRecord.status)
        .join(AgreementRecord, AgreementRecord.id == ExportRequest.agreement_id)
        .where(AgreementRecord.status.in_(list(ENDED)))
        .order_by(ExportRequest.id)
    ).all()
    destroyed: dict[str, list[int]] = {}
    for req, status in ended:
        if req.status in UNFINISHED:
            withdraw_for_ended_agreement(session, req, status)
        folder = settings.data_dir / "exports" / str(req.id)
        if folder.exists():
            shutil.rmtree(folder)
            destroyed.setdefault(req.agreement_id, []).append(req.id)
    for agreement_id, request_ids in destroyed.items():
        record(
            session,
            actor="platform",
            action="export.files_destroy",
            object=f"agreement:{agreement_id}",
            details={"requests": request_ids, "article": "Rizhao Art.31"},
        )
    store = key_store(settings)
    for agreement_id in sorted({req.agreement_id for req, _ in ended}):
        if store.destroy_data_key(agreement_key(agreement_id)):
            record(
                session,
                actor="platform",
                action="key.destroy",
                object=f"agreement:{agreement_id}",
                details={
                    "key": "data key at rest",
                    "opens": "export files",
                    "article": "Rizhao Art.31",
                },
            )
    return destroyed
