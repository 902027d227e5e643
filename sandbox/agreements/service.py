"""Import, amend, export and move agreements through their lifecycle.

The database copy is authoritative and versioned (ARCHITECTURE.md): importing a
file that differs from it is refused; an amendment makes a new version.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import ApiToken, Role, User
from sandbox.accounts.permissions import can_see_agreement, require_provider_of, require_role
from sandbox.agreements.lifecycle import ENDED, AgreementAction, next_status
from sandbox.agreements.models import AgreementRecord, AgreementStatus, AgreementVersion
from sandbox.audit.filings import file_with_authority
from sandbox.audit.record import record
from sandbox.catalog.service import catalog_entries, dataset_versions, suspended_datasets
from sandbox.contracts import Agreement, dump_agreement, load_agreement_text
from sandbox.contracts.validation import validate_agreement
from sandbox.db.base import utcnow
from sandbox.errors import Conflict, NotFound, PermissionDenied, PolicyViolation, ValidationFailed

ART_SIGNED = "Rizhao Art.20"
ART_RECTIFY = "Shanghai Art.26, 36"


def _spec(agreement: Agreement) -> dict:
    return load_agreement_text(dump_agreement(agreement)).model_dump(mode="json")


def get_agreement(session: Session, agreement_id: str) -> AgreementRecord:
    found = session.get(AgreementRecord, agreement_id)
    if found is None:
        raise NotFound(f"agreement {agreement_id!r} does not exist", rule="agreement-unknown")
    return found


def visible_agreement(session: Session, actor: User, agreement_id: str) -> AgreementRecord:
    """The agreement if the actor may see it; otherwise not found (existence is not revealed)."""
    rec = get_agreement(session, agreement_id)
    if not can_see_agreement(actor, rec.provider, rec.spec["researchers"]):
        raise NotFound(f"agreement {agreement_id!r} does not exist", rule="agreement-unknown")
    return rec


def researchers_active_agreement(
    session: Session, actor: User, agreement_id: str, *, what: str, rule: str, article: str
) -> AgreementRecord:
    """The agreement, if ``actor`` is one of its researchers and it is active: what a
    researcher hands in (``what``: "export", "import") comes from them and only then."""
    rec = visible_agreement(session, actor, agreement_id)
    if actor.username not in rec.spec["researchers"]:
        raise PermissionDenied(
            f"{what} requests come from the agreement's researchers", rule=rule, article=article
        )
    if rec.status != AgreementStatus.active:
        raise PolicyViolation(
            "agreement-not-active",
            "Shanghai Art.26, 36",
            f"agreement {rec.id} is {rec.status}; nothing can be {what}ed",
        )
    return rec


def list_agreements(session: Session, actor: User) -> list[AgreementRecord]:
    rows = session.scalars(select(AgreementRecord).order_by(AgreementRecord.id))
    return [r for r in rows if can_see_agreement(actor, r.provider, r.spec["researchers"])]


def as_contract(rec: AgreementRecord) -> Agreement:
    return Agreement.model_validate(rec.spec)


def _validate(session: Session, agreement: Agreement) -> None:
    validate_agreement(agreement, catalog_entries(session))
    users = {u.username: u for u in session.scalars(select(User))}
    for name in agreement.researchers:
        user = users.get(name)
        if user is None or user.role != Role.researcher:
            raise ValidationFailed(
                f"researchers: {name!r} is not a registered researcher; agreements name "
                "real-name registered researchers only (Wuxi Art.6)",
                rule="agreement-researchers",
            )


def import_agreement(
    *, session: Session, actor: User, agreement: Agreement, application_id: int | None = None
) -> AgreementRecord:
    """Register a signed agreement, or confirm a file equals the stored copy."""
    if actor.role != Role.operator:
        require_provider_of(actor, agreement.provider)
    existing = session.get(AgreementRecord, agreement.id)
    if existing is not None:
        if existing.spec == _spec(agreement):
            return existing
        raise Conflict(
            f"agreement {agreement.id} is already in the platform and the file differs from "
            f"version {existing.version}; the database copy is authoritative — amend it instead",
            rule="agreement-authoritative-copy",
        )
    _validate(session, agreement)
    spec = _spec(agreement)
    rec = AgreementRecord(
        id=agreement.id,
        provider=agreement.provider,
        status=AgreementStatus.active,
        version=1,
        valid_from=agreement.valid_from,
        valid_until=agreement.valid_until,
        spec=spec,
        application_id=application_id,
    )
    session.add(rec)
    session.flush()
    session.add(
        AgreementVersion(
            agreement_id=rec.id,
            version=1,
            spec=spec,
            reason="signed",
            dataset_versions=dataset_versions(session, list(agreement.datasets)),
            created_by=actor.username,
        )
    )
    record(
        session,
        actor=actor.username,
        action="agreement.sign",
        object=f"agreement:{rec.id}",
        details={"version": 1, "datasets": sorted(agreement.datasets), "mode": agreement.mode},
    )
    file_with_authority(
        session,
        kind="agreement_signed",
        object=f"agreement:{rec.id}",
        article=ART_SIGNED,
        summary=f"{agreement.title} — {agreement.provider} with {', '.join(agreement.researchers)}"
        f" ({agreement.valid_from} to {agreement.valid_until})",
        actor=actor.username,
    )
    return rec


def amend_agreement(
    *, session: Session, actor: User, agreement: Agreement, reason: str
) -> AgreementRecord:
    """Make a new version; the old ones stay as they were."""
    rec = get_agreement(session, agreement.id)
    require_provider_of(actor, rec.provider)
    if rec.status in ENDED:
        raise ValidationFailed(
            f"agreement {rec.id} has {rec.status}; an ended agreement cannot be amended",
            rule="agreement-ended",
        )
    if not reason.strip():
        raise ValidationFailed("an amendment needs a reason", rule="agreement-amend-reason")
    if agreement.provider != rec.provider:
        raise ValidationFailed("an amendment cannot change the provider", rule="agreement-amend")
    _validate(session, agreement)
    spec = _spec(agreement)
    if spec == rec.spec:
        raise Conflict("the amendment changes nothing", rule="agreement-amend-noop")
    rec.version += 1
    rec.spec = spec
    rec.valid_from, rec.valid_until = agreement.valid_from, agreement.valid_until
    rec.updated_at = utcnow()
    session.add(
        AgreementVersion(
            agreement_id=rec.id,
            version=rec.version,
            spec=spec,
            reason=reason,
            dataset_versions=dataset_versions(session, list(agreement.datasets)),
            created_by=actor.username,
        )
    )
    record(
        session,
        actor=actor.username,
        action="agreement.amend",
        object=f"agreement:{rec.id}",
        details={"version": rec.version, "reason": reason},
    )
    return rec


def export_agreement(session: Session, actor: User, agreement_id: str) -> str:
    """The current version as contract YAML."""
    return dump_agreement(as_contract(visible_agreement(session, actor, agreement_id)))


def _revoke_tokens(session: Session, agreement_id: str) -> int:
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.agreement_id == agreement_id, ApiToken.revoked.is_(False))
    ).all()
    for t in tokens:
        t.revoked = True
    return len(tokens)


def change_status(
    *,
    session: Session,
    actor: User | None,
    agreement_id: str,
    action: AgreementAction,
    reason: str,
    rectification_days: int | None = None,
    today: date,
) -> AgreementRecord:
    """Move an agreement along TRANSITIONS; ``actor=None`` is the platform's own scheduler."""
    rec = get_agreement(session, agreement_id)
    if actor is not None:
        if actor.role == Role.provider:
            require_provider_of(actor, rec.provider)
        else:
            require_role(actor, Role.operator, Role.provider)
        if action == AgreementAction.expire:
            raise PermissionDenied("expiry happens by date, not by hand", rule="agreement-expiry")
    if not reason.strip():
        raise ValidationFailed(f"{action.value} needs a reason", rule="agreement-reason")
    new = next_status(rec.status, action)
    details: dict = {"from": rec.status, "to": new.value, "reason": reason}
    rec.rectification_deadline = None
    if action == AgreementAction.suspend:
        if not rectification_days or rectification_days < 1:
            raise ValidationFailed(
                "a suspension for missed security measures sets a rectification period in days "
                f"({ART_RECTIFY})",
                rule="agreement-rectification",
            )
        rec.rectification_deadline = today + timedelta(days=rectification_days)
        details["rectification_deadline"] = rec.rectification_deadline.isoformat()
        details["article"] = ART_RECTIFY
    rec.status = new
    rec.status_reason = reason
    rec.updated_at = utcnow()
    if new != AgreementStatus.active:
        details["tokens_revoked"] = _revoke_tokens(session, rec.id)
    record(
        session,
        actor=actor.username if actor else "platform",
        action=f"agreement.{action.value}",
        object=f"agreement:{rec.id}",
        details=details,
    )
    return rec


def run_lifecycle(session: Session, *, today: date) -> list[tuple[str, str]]:
    """The daily job: expire by date; end agreements whose rectification deadline passed."""
    changed: list[tuple[str, str]] = []
    live = session.scalars(
        select(AgreementRecord).where(
            AgreementRecord.status.in_([AgreementStatus.active, AgreementStatus.suspended])
        )
    ).all()
    for rec in live:
        if rec.valid_until < today:
            change_status(
                session=session,
                actor=None,
                agreement_id=rec.id,
                action=AgreementAction.expire,
                reason=f"valid_until {rec.valid_until} has passed",
                today=today,
            )
            changed.append((rec.id, AgreementStatus.expired))
        elif rec.rectification_deadline is not None and rec.rectification_deadline < today:
            change_status(
                session=session,
                actor=None,
                agreement_id=rec.id,
                action=AgreementAction.terminate,
                reason=f"not rectified by {rec.rectification_deadline} ({ART_RECTIFY})",
                today=today,
            )
            changed.append((rec.id, AgreementStatus.terminated))
    return changed


def effective_datasets(session: Session, rec: AgreementRecord) -> dict[str, list[str]]:
    """The agreement's datasets minus those suspended after a rights complaint (Shanghai Art.22)."""
    suspended = suspended_datasets(session)
    return {
        name: scope["columns"]
        for name, scope in rec.spec["datasets"].items()
        if name not in suspended
    }
