"""How the cases are shown over the API and the CLI: plain JSON, never protected data values.

Contacts and receipt hashes stay inside; the register's public view is
:func:`sandbox.oversight.violations.public_register`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sandbox.oversight.models import Demand, QualityTask, TipOff, Violation
from sandbox.oversight.quality import is_overdue
from sandbox.oversight.violations import KINDS


def violation_view(v: Violation) -> dict[str, Any]:
    return {
        "id": v.id,
        "agreement_id": v.agreement_id,
        "researcher": v.researcher,
        "organisation": v.organisation,
        "kind": v.kind,
        "article": KINDS[v.kind],
        "source": v.source,
        "alert_id": v.alert_id,
        "tipoff_id": v.tipoff_id,
        "evidence": v.evidence,
        "references": v.references,
        "status": v.status,
        "measure": v.measure,
        "reason": v.answer,
        "measured_on": v.measured_on,
        "rectification_deadline": v.rectification_deadline,
        "published_on": v.published_on,
        "recorded_by": v.recorded_by,
        "created_at": v.created_at,
    }


def tipoff_view(t: TipOff) -> dict[str, Any]:
    return {
        "id": t.id,
        "kind": t.kind,
        "reporter": t.reporter,
        "contact": t.contact,
        "description": t.description,
        "dataset": t.dataset.name if t.dataset else None,
        "agreement_id": t.agreement_id,
        "provider": t.provider,
        "status": t.status,
        "answer": t.answer,
        "created_at": t.created_at,
    }


def quality_task_view(task: QualityTask, today: date) -> dict[str, Any]:
    return {
        "id": task.id,
        "dataset": task.dataset.name,
        "provider": task.provider,
        "description": task.description,
        "objection_id": task.objection_id,
        "require_new_version": task.require_new_version,
        "version_at_raise": task.version_at_raise,
        "closed_version": task.closed_version,
        "raised_on": task.raised_on,
        "due_on": task.due_on,
        "overdue": is_overdue(task, today),
        "status": task.status,
        "answer": task.answer,
    }


def demand_view(d: Demand) -> dict[str, Any]:
    return {
        "id": d.id,
        "requester": d.requester,
        "title": d.title,
        "description": d.description,
        "domain": d.domain,
        "dataset": d.dataset.name if d.dataset else None,
        "status": d.status,
        "answer": d.answer,
        "created_at": d.created_at,
    }


def receipt_view(case: TipOff | Demand) -> dict[str, Any]:
    """What the person who sent a case reads with their receipt: where it stands, the answer."""
    return {"id": case.id, "status": case.status, "answer": case.answer}
