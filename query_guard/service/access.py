"""Who is calling the query service, and under which agreement.

Only a workspace token opens the door: it names one researcher and one
agreement, and dies with the agreement (``sandbox.accounts.service``). The
agreement must be active and within its period; a worker that serves one
agreement refuses tokens of every other one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from query_guard.context import GuardContext
from sandbox.accounts.models import User
from sandbox.accounts.service import resolve_token
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.agreements.service import as_contract, get_agreement
from sandbox.catalog.service import agreement_catalog
from sandbox.clock import today
from sandbox.contracts.agreement import Agreement
from sandbox.errors import PermissionDenied, PolicyViolation

ART_RECTIFY = "Shanghai Art.26, 36"


class Unauthenticated(PermissionDenied):
    """No live workspace token: the caller is not known to be anyone."""

    rule = "workspace-token"
    status_code = 401


@dataclass(frozen=True)
class Caller:
    """A researcher acting under one agreement, as of this request."""

    user: User
    record: AgreementRecord
    agreement: Agreement
    guard: GuardContext

    @property
    def agreement_id(self) -> str:
        return self.record.id


def authorise(session: Session, token: str | None, *, only_agreement: str | None = None) -> Caller:
    """Resolve the bearer token to a researcher and an active agreement, or refuse.

    The messages never say whether a token exists for some other purpose:
    every unusable token gets the same answer.
    """
    found = resolve_token(session, token) if token else None
    if found is None or found[1].agreement_id is None:
        raise Unauthenticated(
            "a live workspace token is required (the token given is missing, unknown, expired, "
            "revoked, or not bound to an agreement)"
        )
    user, row = found
    if only_agreement is not None and row.agreement_id != only_agreement:
        raise PermissionDenied(
            f"this query worker serves agreement {only_agreement} only",
            rule="worker-agreement",
        )
    rec = get_agreement(session, row.agreement_id)
    if rec.status != AgreementStatus.active:
        raise PolicyViolation(
            "agreement-not-active",
            ART_RECTIFY,
            f"agreement {rec.id} is {rec.status}; queries run only under an active agreement",
        )
    agreement = as_contract(rec)
    if not agreement.is_in_period(today()):
        raise PolicyViolation(
            "agreement-not-in-period",
            f"agreement {rec.id} valid_from, valid_until",
            f"agreement {rec.id} is valid from {agreement.valid_from} to "
            f"{agreement.valid_until}; queries run only within that period",
        )
    if user.username not in agreement.researchers:
        raise PermissionDenied(
            f"agreement {rec.id} does not name you as a researcher", rule="agreement-researcher"
        )
    entries, suspended = agreement_catalog(session, agreement.datasets)
    return Caller(user, rec, agreement, GuardContext(agreement, entries, suspended))
