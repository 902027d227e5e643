"""Figures the pages show that the services do not compute themselves.

They are read-outs only (a countdown, the budget left, the published public keys); none
decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from export_review.ledger import budget_state
from export_review.signing import load_or_create_signing_key, public_key_pem, signing_key_path
from sandbox.agreements.models import AgreementRecord
from sandbox.applications.models import Application, ApplicationStatus
from sandbox.applications.service import is_overdue
from sandbox.audit.checkpoint import KEY_FILE as AUDIT_KEY_FILE
from sandbox.audit.checkpoint import fingerprint_hex, load_signing_key, public_key_hex
from sandbox.catalog.service import public_datasets
from sandbox.errors import PolicyViolation, SandboxError
from sandbox.settings import Settings
from sandbox.workcalendar import WorkCalendar


@dataclass(frozen=True)
class ReviewClock:
    """Where an application stands against its 10-working-day deadline (Wuxi Art.15(3))."""

    deadline: date | None
    working_days_left: int | None
    overdue: bool


def review_clock(app: Application, today: date, calendar: WorkCalendar) -> ReviewClock:
    if app.status != ApplicationStatus.under_review or app.review_deadline is None:
        return ReviewClock(app.review_deadline, None, False)
    left = calendar.working_days_between(today, app.review_deadline)
    return ReviewClock(app.review_deadline, left, is_overdue(app, today))


def applicable_datasets(session: Session) -> list[dict]:
    """The public catalogue's datasets and their columns, for choosing what to apply for."""
    return [
        {
            "name": d.name,
            "title": d.entry["title"],
            "provider": d.provider,
            "columns": d.entry["columns"],
        }
        for d in public_datasets(session)
    ]


def epsilon_left(session: Session, rec: AgreementRecord) -> float:
    """The privacy budget left; the ledger registers a budget at the first DP release,
    so an agreement with no ledger entry has spent nothing of its agreed epsilon."""
    try:
        return budget_state(session, rec.id).epsilon_remaining
    except PolicyViolation:
        return float(rec.spec["privacy"]["epsilon"])


@dataclass(frozen=True)
class PublishedKey:
    """A public key the platform signs with, as published for checking outside it."""

    name: str
    pem: str | None
    raw_hex: str | None
    fingerprint: str | None
    problem: str = ""


def _published(name: str, key: Ed25519PrivateKey | None, problem: str = "") -> PublishedKey:
    if key is None:
        return PublishedKey(name, None, None, None, problem)
    raw = public_key_hex(key)
    return PublishedKey(name, public_key_pem(key).decode(), raw, fingerprint_hex(raw))


def published_keys(settings: Settings) -> dict[str, PublishedKey]:
    """The release-signing key (bundles) and the audit key (checkpoints), public halves only.

    Neither key is made here: each is made when it first signs (a release, a checkpoint),
    and until then the page says so.
    """
    release_path = signing_key_path(settings.keys_dir)
    if release_path.is_file():
        release = _published("release", load_or_create_signing_key(release_path))
    else:
        release = _published("release", None, "not-yet")
    if not (settings.keys_dir / AUDIT_KEY_FILE).is_file():
        audit = _published("audit", None, "not-yet")
    else:
        try:
            audit = _published("audit", load_signing_key(settings.keys_dir, create=False))
        except SandboxError as exc:  # e.g. a key file others can read: refused, not shown
            audit = _published("audit", None, exc.rule)
    return {"release": release, "audit": audit}
