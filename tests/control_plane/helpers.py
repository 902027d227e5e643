"""Builders shared by the control-plane tests."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.catalog.service import publish_dataset
from sandbox.contracts import Agreement, load_catalog_entry
from sandbox.db.base import transaction
from sandbox.settings import Settings


def publish_all(
    factory: sessionmaker[Session], users: dict[str, User], settings: Settings, catalog: Path
) -> None:
    for path in sorted(catalog.glob("*.yaml")):
        entry = load_catalog_entry(path)
        with transaction(factory) as session:
            publish_dataset(
                session=session,
                actor=users["health"],
                entry=entry,
                data_path=entry.source_path(),
                datasets_dir=settings.datasets_dir,
            )


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
