"""Builders shared by the control-plane tests."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.orm import Session, sessionmaker

from query_guard.engine import open_readonly
from sandbox.accounts.models import User
from sandbox.catalog.review import Decision, decide_review
from sandbox.catalog.service import Publication, publish_dataset
from sandbox.contracts import Agreement, load_catalog_entry
from sandbox.db.base import transaction
from sandbox.identity.organisations import verify_identity
from sandbox.keys.store import key_store
from sandbox.settings import DEV_SECRET, Settings


def open_agreement_database(
    settings: Settings, agreement_id: str, path: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """The agreement's provisioned database (or a copy of it at ``path``), opened on the
    hardened engine with its data key from the key store, as the query worker opens it."""
    return open_readonly(
        path or settings.agreements_dir / f"{agreement_id}.duckdb",
        temp_dir=settings.data_dir / "query-tmp",
        encryption_key=key_store(settings).data_key(agreement_id),
    )


def verify_researcher(session: Session, users: dict[str, User], username: str) -> None:
    """The operator ``ops`` verifies ``username``'s real name through the real service."""
    verify_identity(
        session=session,
        actor=users["ops"],
        username=username,
        legal_name=f"{username.title()} (legal name)",
        verified_how="identity card checked in person",
        resident_id=None,
        secret_key=DEV_SECRET,
    )


def publish_all(
    factory: sessionmaker[Session], users: dict[str, User], settings: Settings, catalog: Path
) -> None:
    """Publish every entry in ``catalog`` as ``health``; the authority ``auth`` approves each."""
    for path in sorted(catalog.glob("*.yaml")):
        publish_approved(factory, users, settings, path)


def publish_approved(
    factory: sessionmaker[Session],
    users: dict[str, User],
    settings: Settings,
    path: Path,
    who: str = "health",
) -> Publication:
    """Publish one entry and, when it needs a catalogue review, approve it as ``auth``."""
    entry = load_catalog_entry(path)
    with transaction(factory) as session:
        publication = publish_dataset(
            session=session,
            actor=users[who],
            entry=entry,
            data_path=entry.source_path(),
            settings=settings,
        )
        if publication.review is not None:
            decide_review(
                session=session,
                actor=users["auth"],
                review_id=publication.review.id,
                decision=Decision.approve,
                legality_review="Lawful to open: conditions and data items checked.",
            )
        return publication


def agreement(**overrides: Any) -> Agreement:
    today = date.today()
    doc: dict[str, Any] = {
        "id": "AGR-T-0001",
        "title": "Clinic costs by district",
        "provider": "city-health-commission",
        "researchers": ["alice"],
        "purpose": "Mean cost per district.",
        "mode": "aggregate",
        "valid_from": today - timedelta(days=10),
        "valid_until": today + timedelta(days=100),
        "datasets": {
            "clinic_visits": {
                "columns": ["patient_id", "district", "cost"],
                "row_filter": "cost >= 0",
            }
        },
        "usage_reports": "quarterly",
    }
    doc.update(overrides)
    return Agreement.model_validate(doc)


def complete_application(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "application_type": "sandbox",
        "title": "Clinic costs",
        "reason": "Public-interest study of clinic costs.",
        "scenario": "District-level aggregates for a report.",
        "purpose": "Compare mean costs across districts.",
        "datasets": {"clinic_visits": ["patient_id", "district", "cost"]},
        "usage_from": date(2027, 1, 1),
        "usage_until": date(2027, 6, 30),
        "output_forms": ["dp_table"],
        "conditions_evidence": "Security certificate no. 42.",
        "commitment_signed": True,
    }
    fields.update(overrides)
    return fields
