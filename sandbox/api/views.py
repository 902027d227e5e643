"""How stored objects are shown over the API: plain JSON, never protected data values."""

from __future__ import annotations

from datetime import date
from typing import Any

from sandbox.agreements.models import AgreementRecord
from sandbox.applications.models import Application
from sandbox.applications.service import is_overdue
from sandbox.catalog.models import CatalogReview, Dataset, DatasetVersion
from sandbox.catalog.service import is_stale
from sandbox.feedback.models import Complaint, Objection


def dataset_view(ds: Dataset, version: DatasetVersion | None, today: date) -> dict[str, Any]:
    return {
        **ds.entry,
        "status": ds.status,
        "published": ds.published,
        "under_objection": ds.under_objection,
        "version": version.version if version else None,
        "published_at": version.published_at.isoformat() if version else None,
        "stale": is_stale(ds, version, today),
        "quality": version.quality if version else None,
    }


def catalog_review_view(
    review: CatalogReview, ds: Dataset, version: DatasetVersion | None
) -> dict[str, Any]:
    """A catalogue review with the data version it proposes (None: a class change alone)."""
    return {
        "id": review.id,
        "dataset": ds.name,
        "provider": ds.provider,
        "kind": review.kind,
        "status": review.status,
        "from_class": review.from_class,
        "to_class": review.to_class,
        "basis": review.basis,
        "proposed_entry": review.proposed_entry,
        "version": version.version if version else None,
        "quality": version.quality if version else None,
        "submitted_by": review.submitted_by,
        "submitted_at": review.submitted_at.isoformat(),
        "legality_review": review.legality_review,
        "reviewed_by": review.reviewed_by,
        "reviewed_at": review.reviewed_at.isoformat() if review.reviewed_at else None,
    }


def application_view(app: Application, today: date) -> dict[str, Any]:
    return {
        "id": app.id,
        "applicant_id": app.applicant_id,
        "provider": app.provider,
        "application_type": app.application_type,
        "title": app.title,
        "reason": app.reason,
        "scenario": app.scenario,
        "purpose": app.purpose,
        "datasets": app.datasets,
        "usage_from": app.usage_from,
        "usage_until": app.usage_until,
        "output_forms": app.output_forms,
        "mode": app.mode,
        "conditions_evidence": app.conditions_evidence,
        "commitment_signed": app.commitment_signed,
        "status": app.status,
        "received_on": app.received_on,
        "review_deadline": app.review_deadline,
        "overdue": is_overdue(app, today),
        "decision_reason": app.decision_reason,
        "legal_basis": app.legal_basis,
        "approved_scope": app.approved_scope,
        "agreement_id": app.agreement_id,
    }


def agreement_view(rec: AgreementRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "provider": rec.provider,
        "status": rec.status,
        "version": rec.version,
        "valid_from": rec.valid_from,
        "valid_until": rec.valid_until,
        "status_reason": rec.status_reason,
        "rectification_deadline": rec.rectification_deadline,
        "spec": rec.spec,
    }


def objection_view(o: Objection) -> dict[str, Any]:
    return {
        "id": o.id,
        "dataset_id": o.dataset_id,
        "submitter": o.submitter,
        "description": o.description,
        "status": o.status,
        "answer": o.answer,
        "created_at": o.created_at,
    }


def complaint_view(c: Complaint) -> dict[str, Any]:
    return {
        "id": c.id,
        "dataset_id": c.dataset_id,
        "complainant": c.complainant,
        "kind": c.kind,
        "description": c.description,
        "status": c.status,
        "answer": c.answer,
        "created_at": c.created_at,
    }
