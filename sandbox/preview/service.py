"""Previews as the API and the CLI see them: set the budget, generate, fetch for download.

Only conditional datasets that are open right now have previews: non-open
data is never previewed (Shanghai Art.11), unconditional data can be had
without applying, and a dataset suspended after a rights complaint shows
nothing until it is restored (Shanghai Art.22). Only the dataset's provider
sets its preview budget and generates previews; anyone downloads them.

Generating runs in two transactions with the computation between them
(ARCHITECTURE "Differential privacy, precisely"): the first chooses the
mechanisms from the catalogue entry alone, charges the preview budget and
records the charge, and commits; only then are the noisy marginals computed
and the sample drawn; the second stores them and records the release. A
failure between the two leaves the budget charged: it is never refunded on a
path where noise may have been drawn.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from export_review.ledger import DELTA_UNIT, EPSILON_UNIT, BudgetState, delta_units, epsilon_units
from sandbox.accounts.models import User
from sandbox.accounts.permissions import require_provider_of
from sandbox.audit.record import record
from sandbox.catalog.encryption import version_key
from sandbox.catalog.models import Dataset, DatasetStatus, DatasetVersion
from sandbox.catalog.service import entry_of, get_dataset, get_public_dataset, latest_version
from sandbox.contracts import OpenClass
from sandbox.db.base import transaction
from sandbox.errors import NotFound, PolicyViolation, ValidationFailed
from sandbox.keys.store import key_store
from sandbox.preview import ledger
from sandbox.preview.marginals import measure, plan_columns, prepare
from sandbox.preview.models import SyntheticPreview
from sandbox.preview.synthesis import sample_csv
from sandbox.settings import Settings

DEFAULT_ROWS = 1000
#: The sample is stored in the database; ten thousand rows show any column's shape.
MAX_ROWS = 10_000
CONDITIONAL_ONLY = "preview-conditional-only"
SUSPENDED = "preview-suspended"


def check_previewable(dataset: Dataset) -> None:
    """Refuse unless ``dataset`` is conditional and open right now."""
    if dataset.open_class != OpenClass.conditional:
        raise PolicyViolation(
            CONDITIONAL_ONLY,
            "Shanghai Art.11, Art.18",
            f"synthetic previews are made only for conditional (有条件开放) datasets; "
            f"{dataset.name} is {dataset.open_class}",
        )
    if dataset.status != DatasetStatus.open:
        raise PolicyViolation(
            SUSPENDED,
            "Shanghai Art.22",
            f"{dataset.name} is {dataset.status} after a rights complaint; its preview is "
            "unavailable until the opening is restored",
        )


def set_preview_budget(
    *,
    session: Session,
    actor: User,
    name: str,
    epsilon: float,
    delta: float = 0.0,
    max_contributions: int = 1,
) -> BudgetState:
    """The provider sets the total (ε, δ) all previews of ``name`` may spend."""
    dataset = get_dataset(session, name)
    require_provider_of(actor, dataset.provider)
    check_previewable(dataset)
    state = ledger.set_budget(
        session,
        name,
        epsilon_total=epsilon_units(epsilon),
        delta_total=_delta_units(delta),
        max_contributions=max_contributions,
        set_by=actor.username,
    )
    record(
        session,
        actor=actor.username,
        action="preview.budget",
        object=f"dataset:{name}",
        details={"epsilon": epsilon, "delta": delta, "max_contributions": max_contributions},
    )
    return state


def _delta_units(delta: float) -> int:
    if not 0 <= delta < 1:
        raise ValidationFailed(
            f"delta must be at least 0 and below 1, got {delta!r}", rule="preview-budget"
        )
    return delta_units(delta)


def _identifier_kinds(version: DatasetVersion) -> dict[str, str | None]:
    """Identifier kinds from the version's published quality report (public information)."""
    return {c["name"]: c.get("identifier_kind") for c in version.quality.get("columns", [])}


def make_preview(
    *,
    factory: sessionmaker[Session],
    settings: Settings,
    actor: User,
    name: str,
    epsilon: float,
    delta: float = 0.0,
    rows: int = DEFAULT_ROWS,
) -> SyntheticPreview:
    """Charge the preview budget, then release noisy marginals and store a sample drawn from them.

    Refused with ``preview-budget-exhausted`` (nothing charged) when the
    budget cannot pay ``epsilon`` and the δ that selecting months needs.
    """
    if not 1 <= rows <= MAX_ROWS:
        raise ValidationFailed(f"rows must be between 1 and {MAX_ROWS}", rule="preview-rows")
    units = epsilon_units(epsilon)
    _delta_units(delta)
    with transaction(factory) as session:
        dataset = get_dataset(session, name)
        require_provider_of(actor, dataset.provider)
        check_previewable(dataset)
        version = latest_version(session, dataset)
        if version is None:
            raise NotFound(f"dataset {name!r} has no published data yet", rule="dataset-no-data")
        entry = entry_of(dataset)
        budget = ledger.budget_of(session, name)
        per_entity = budget.max_contributions if budget and entry.entity else 1
        prepared = prepare(
            plan_columns(entry, _identifier_kinds(version), months_allowed=delta > 0),
            epsilon=epsilon,
            delta=delta,
            max_contributions=per_entity,
        )
        names = [m.name for m in prepared.mechanisms.values()]
        charged = ledger.charge(
            session,
            name,
            version=version.version,
            epsilon=units,
            delta=delta_units(prepared.delta),
            mechanisms=names,
            charged_by=actor.username,
        )
        record(
            session,
            actor=actor.username,
            action="preview.charge",
            object=f"dataset:{name}",
            details={
                "version": version.version,
                "charge": charged.id,
                "epsilon": epsilon,
                "delta": prepared.delta,
                "mechanisms": names,
            },
        )
        source, entity, number = Path(version.path), entry.entity, version.version
        key = version_key(key_store(settings), version)
    # The charge is committed: from here on noise may be drawn.
    marginals: dict[str, Any] = {
        "dataset": name,
        "version": number,
        "privacy_unit": entity or "row",
        "max_contributions": per_entity,
        "epsilon": prepared.epsilon,
        "delta": prepared.delta,
        "columns": measure(prepared, source, key, entity),
    }
    sample = sample_csv(marginals["columns"], rows)
    with transaction(factory) as session:
        preview = SyntheticPreview(
            charge_id=charged.id,
            dataset=name,
            dataset_version=number,
            epsilon=charged.epsilon,
            delta=charged.delta,
            max_contributions=per_entity,
            rows=rows,
            marginals=marginals,
            sample_csv=sample,
            sample_sha256=hashlib.sha256(sample.encode()).hexdigest(),
            created_by=actor.username,
        )
        session.add(preview)
        session.flush()
        record(
            session,
            actor=actor.username,
            action="preview.release",
            object=f"dataset:{name}",
            details={
                "preview": preview.id,
                "version": number,
                "rows": rows,
                "sha256": preview.sample_sha256,
                "epsilon": epsilon,
                "delta": prepared.delta,
            },
        )
    return preview


def latest_preview(session: Session, name: str) -> tuple[Dataset, SyntheticPreview]:
    """The newest preview of ``name`` for download; non-open datasets are not revealed."""
    dataset = get_public_dataset(session, name)
    check_previewable(dataset)
    found = session.scalar(
        select(SyntheticPreview)
        .where(SyntheticPreview.dataset == name)
        .order_by(SyntheticPreview.id.desc())
        .limit(1)
    )
    if found is None:
        raise NotFound(
            f"no synthetic preview of {name!r} has been generated yet", rule="preview-none"
        )
    return dataset, found


def preview_status(session: Session, name: str) -> dict[str, Any]:
    """What anyone may know about a dataset's previews: the budget left and the latest one."""
    dataset = get_public_dataset(session, name)
    check_previewable(dataset)
    budget = ledger.budget_of(session, name)
    state = ledger.state_of(budget) if budget else None
    latest = session.scalar(
        select(SyntheticPreview)
        .where(SyntheticPreview.dataset == name)
        .order_by(SyntheticPreview.id.desc())
        .limit(1)
    )
    return {
        "dataset": name,
        "budget": None
        if state is None
        else {
            "epsilon_total": state.epsilon_total,
            "epsilon_remaining": state.epsilon_remaining,
            "delta_remaining": state.delta_remaining,
            "max_contributions": budget.max_contributions if budget else None,
        },
        "latest": None if latest is None else preview_view(latest),
    }


def preview_view(preview: SyntheticPreview) -> dict[str, Any]:
    return {
        "id": preview.id,
        "dataset": preview.dataset,
        "version": preview.dataset_version,
        "rows": preview.rows,
        "epsilon": preview.epsilon / EPSILON_UNIT,
        "delta": preview.delta / DELTA_UNIT,
        "sha256": preview.sample_sha256,
        "created_at": preview.created_at.isoformat(),
        "columns": [
            {k: c[k] for k in ("name", "type", "how", "reason")}
            for c in preview.marginals["columns"]
        ],
    }
