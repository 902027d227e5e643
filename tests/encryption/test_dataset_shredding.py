"""Crypto-shredding of dataset versions: when a dataset is withdrawn after a rights complaint,
or a catalogue proposal is rejected, the recurring duties destroy its versions' keys and the
record says so; a copy of the file kept anywhere (a backup's too) opens no more."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from sandbox.audit.models import AuditEvent
from sandbox.catalog.encryption import version_key
from sandbox.catalog.models import DatasetVersion
from sandbox.catalog.review import Decision, decide_review
from sandbox.catalog.service import publish_dataset
from sandbox.contracts import load_catalog_entry
from sandbox.db.base import transaction
from sandbox.duties.run import run_duties
from sandbox.feedback.complaints import file_complaint, handle_complaint
from sandbox.feedback.models import ComplaintStatus
from sandbox.keys.store import DataKeyMissing, key_store
from tests.control_plane.conftest import (  # noqa: F401  (fixtures)
    catalog_dir,
    db_url,
    factory,
    settings,
    users,
)
from tests.control_plane.helpers import publish_all


def _versions(factory) -> list[DatasetVersion]:  # noqa: ANN001, F811
    with transaction(factory) as session:
        versions = list(session.scalars(select(DatasetVersion).order_by(DatasetVersion.id)))
        session.expunge_all()
        return versions


def _destroyed(factory) -> list[tuple[str, dict]]:  # noqa: ANN001, F811
    with transaction(factory) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "key.destroy"))
        return [(e.object, json.loads(e.details)) for e in events]


def test_withdrawing_a_dataset_shreds_its_versions_keys_with_a_record(
    factory,  # noqa: F811
    users,  # noqa: F811
    settings,  # noqa: F811
    catalog_dir,  # noqa: F811
    tmp_path: Path,
) -> None:
    publish_all(factory, users, settings, catalog_dir)
    version = next(v for v in _versions(factory) if Path(v.path).parent.name == "clinic_visits")
    kept = shutil.copy(version.path, tmp_path / "kept.parquet")  # a backup's copy, say
    assert version_key(key_store(settings), version) is not None
    with transaction(factory) as session:
        complaint = file_complaint(
            session=session,
            dataset="clinic_visits",
            complainant="A resident",
            contact="a@b.invalid",
            kind="privacy",
            description="My visits are identifiable.",
            evidence="Row 3 is me.",
        )
        handle_complaint(
            session=session,
            actor=users["health"],
            complaint_id=complaint.id,
            to=ComplaintStatus.withdrawn,
            answer="Withdrawn: the dataset is no longer opened.",
        )

    report = run_duties(settings, factory, today=date.today())
    assert report.errors == {} and report.done["dataset_key_shredding"] == ["clinic_visits v1"]
    with pytest.raises(DataKeyMissing) as refused:
        version_key(key_store(settings), version)
    assert refused.value.rule == "at-rest-key-missing"
    assert Path(kept).read_bytes()[:4] == b"PARE"  # the copy stays, and has nothing to open it
    ((what, details),) = _destroyed(factory)
    assert what == "dataset:clinic_visits" and details["version"] == 1
    assert "Shanghai Art.22" in details["article"]
    # Idempotent: the next run finds nothing left to destroy, and records nothing.
    assert run_duties(settings, factory, today=date.today()).done["dataset_key_shredding"] == []
    assert len(_destroyed(factory)) == 1


def test_a_rejected_proposal_has_its_versions_key_shredded(
    factory,  # noqa: F811
    users,  # noqa: F811
    settings,  # noqa: F811
    catalog_dir,  # noqa: F811
) -> None:
    entry = load_catalog_entry(catalog_dir / "clinic_visits.yaml")
    with transaction(factory) as session:
        proposal = publish_dataset(
            session=session,
            actor=users["health"],
            entry=entry,
            data_path=entry.source_path(),
            settings=settings,
        )
        decide_review(
            session=session,
            actor=users["auth"],
            review_id=proposal.review.id,
            decision=Decision.reject,
            legality_review="The conditions do not follow the classification rules.",
        )
    (version,) = _versions(factory)
    wrapped = settings.key_store_path / "datasets" / f"{version.dataset_id}-v1.json"
    assert wrapped.is_file() and not Path(version.path).exists()  # the file went at once

    assert run_duties(settings, factory, today=date.today()).done["dataset_key_shredding"] == [
        "clinic_visits v1"
    ]
    assert not wrapped.exists()
    ((what, details),) = _destroyed(factory)
    assert "rejected" in details["reason"] and "Shanghai Art.12" in details["article"]
