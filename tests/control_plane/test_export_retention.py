"""When an agreement ends, the files submitted for export go with its workspace (R16,
Rizhao Art.31): unfinished requests are withdrawn by the platform, every submitted file
is deleted, and the released, signed bundle stays and still verifies."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path

from sqlalchemy import select

from export_review.bundle import verify_bundle
from export_review.signing import load_or_create_signing_key, signing_key_path
from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.service import change_status
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from tests.control_plane.conftest import login
from tests.control_plane.test_export_workflow import CHART, TABLE, _draft, world  # noqa: F401


def test_an_ended_agreement_takes_its_export_files_and_keeps_its_releases(
    client,  # noqa: ANN001
    world,  # noqa: ANN001, F811
    settings,  # noqa: ANN001
    factory,  # noqa: ANN001
) -> None:
    alice, health, health2 = (login(client, u) for u in ("alice", "health", "health2"))
    files = {"table.csv": TABLE.encode()}
    released = _draft(client, "AGR-T-0001", files, CHART)  # a figure and its table
    client.post(f"/api/exports/{released}/submit", headers=alice)
    client.post(f"/api/exports/{released}/start_review", headers=health, json={})
    client.post(f"/api/exports/{released}/approve", headers=health, json={})
    done = client.post(f"/api/exports/{released}/approve", headers=health2, json={})
    assert done.json()["status"] == "released", done.text
    reviewing = _draft(client, "AGR-T-0001", files, CHART)
    client.post(f"/api/exports/{reviewing}/submit", headers=alice)
    client.post(f"/api/exports/{reviewing}/start_review", headers=health, json={})
    drafted = _draft(client, "AGR-T-0001", files)
    other = _draft(client, "AGR-T-0002", {"table.csv": TABLE.encode()})  # still active
    exports = Path(settings.data_dir) / "exports"
    assert all((exports / str(r)).is_dir() for r in (released, reviewing, drafted, other))

    with transaction(factory) as session:
        change_status(
            session=session,
            actor=world["health"],
            agreement_id="AGR-T-0001",
            action=AgreementAction.terminate,
            reason="project ended early",
            today=date.today(),
        )
    ran = client.post("/api/operator/lifecycle/run", headers=login(client, "ops"))
    assert ran.status_code == 200, ran.text

    for rid in (reviewing, drafted):
        shown = client.get(f"/api/exports/{rid}", headers=health).json()
        assert shown["status"] == "withdrawn" and "Rizhao Art.31" in shown["status_reason"]
    assert client.get(f"/api/exports/{released}", headers=alice).json()["status"] == "released"
    assert not any((exports / str(r)).exists() for r in (released, reviewing, drafted))
    assert (exports / str(other)).is_dir()  # another agreement's files are untouched

    gone = client.get(f"/api/exports/{reviewing}/files/table.csv", headers=health)
    assert gone.status_code == 404 and gone.json()["rule"] == "export-file-destroyed"
    assert gone.json()["article"] == "Rizhao Art.31"
    page = client.get(f"/provider/exports/{reviewing}", headers=health)
    assert page.status_code == 200 and page.text.count("file-destroyed") == 1
    assert 'id="rendered-figure"' not in page.text  # nothing left to draw it from
    drawn = client.get(f"/api/exports/{reviewing}/figure/figure.png", headers=health)
    assert drawn.status_code == 404 and drawn.json()["rule"] == "export-file-destroyed"

    archive = client.get(f"/api/exports/{released}/bundle", headers=alice)
    assert archive.status_code == 200
    out = Path(settings.data_dir) / "download"
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(out)
    public = load_or_create_signing_key(signing_key_path(settings.keys_dir)).public_key()
    assert verify_bundle(out, public) == []

    with transaction(factory) as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "export.files_destroy")
        ).all()
        assert event.object == "agreement:AGR-T-0001"
        assert f'"requests":[{released},{reviewing},{drafted}]' in event.details
    again = client.post("/api/operator/lifecycle/run", headers=login(client, "ops"))
    assert again.status_code == 200
    with transaction(factory) as session:  # nothing left to destroy, nothing recorded twice
        assert len(session.scalars(
            select(AuditEvent).where(AuditEvent.action == "export.files_destroy")
        ).all()) == 1  # fmt: skip
