"""Who is calling the query service, and under which agreement.

Only a workspace token opens the door: it names one researcher and one
agreement, and dies with the agreement (``sandbox.accounts.service``). The
agreement must be active and within its period; a worker that serves one
agreement refuses tokens of every other one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from query_guard.context import GuardContext
from sandbox.accounts.models import ApiToken, User
from sandbox.accounts.service import resolve_token, token_digest
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.agreements.service import as_contract, get_agreement
from sandbox.catalog.models import Dataset
from sandbox.catalog.service import agreement_catalog
from sandbox.clock import today
from sandbox.contracts.agreement import Agreement
from sandbox.db.base import read_only, read_only_connection
from sandbox.errors import Kind, PermissionDenied, PolicyViolation

ART_RECTIFY = "Shanghai Art.26, 36"


class Unauthenticated(PermissionDenied):
    """No live workspace token: the caller is not known to be anyone."""

    rule = "workspace-token"
    kind = Kind.unauthenticated


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


_TOKENS = ApiToken.__table__
_USERS = User.__table__
_AGREEMENTS = AgreementRecord.__table__
_DATASETS = Dataset.__table__
#: Everything :func:`authorise` reads of a token: its row, its user's, its agreement's.
_TOKEN_ROWS = (
    select(_TOKENS, _USERS, _AGREEMENTS)
    .select_from(
        _TOKENS.join(_USERS, _USERS.c.id == _TOKENS.c.user_id).join(
            _AGREEMENTS, _AGREEMENTS.c.id == _TOKENS.c.agreement_id
        )
    )
    .where(_TOKENS.c.token_hash == bindparam("digest"))
)
_DATASET_ROWS = (
    select(_DATASETS)
    .where(_DATASETS.c.name.in_(bindparam("names", expanding=True)))
    .order_by(_DATASETS.c.name)
)


class Callers:
    """The callers this process has authorised, each reused while the rows it was made from
    read the same.

    Every request still reads those rows (the token, its user, its agreement and the
    agreement's datasets, in two statements), so a revoked token, a suspended agreement or
    a withdrawn dataset takes effect on the very next request, as before; what is saved is
    making the agreement's contract and its guard context from them again. Whatever is not
    simply reused (a first sight, a changed row, an expiry or a period's end) goes through
    :func:`authorise`, which says what is wrong, in a read of its own: the rows it made the
    caller from are then those compared or newer, so a change in between only makes the
    next request authorise again.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._made: OrderedDict[str, tuple[tuple[Any, ...], Caller]] = OrderedDict()
        self._lock = threading.Lock()

    def authorise(
        self, sessions: sessionmaker[Session], token: str | None, *, only_agreement: str | None
    ) -> Caller:
        rows = None
        if token:
            digest = token_digest(token)
            with read_only_connection(sessions) as connection:
                rows = _rows_of(connection, digest)
            with self._lock:
                made = self._made.get(digest)
            if made is not None and rows is not None and made[0] == rows:
                caller = made[1]
                if _in_time(caller, rows[0]) and only_agreement in (None, caller.agreement_id):
                    return caller
        with read_only(sessions) as session:
            caller = authorise(session, token, only_agreement=only_agreement)
            session.expunge_all()  # keep what was read: the read-only end rolls back
        if rows is not None:
            with self._lock:
                self._made[digest] = (rows, caller)
                self._made.move_to_end(digest)
                while len(self._made) > self._size:
                    self._made.popitem(last=False)
        return caller


def _rows_of(connection: Connection, digest: str) -> tuple[Any, ...] | None:
    """The rows a caller is made from, as plain tuples; ``None`` for an unknown token."""
    token = connection.execute(_TOKEN_ROWS, {"digest": digest}).first()
    if token is None:
        return None
    names = sorted(token._mapping[_AGREEMENTS.c.spec].get("datasets") or {})
    datasets = connection.execute(_DATASET_ROWS, {"names": names}).all()
    return (tuple(token), *(tuple(row) for row in datasets))


def _in_time(caller: Caller, token: tuple[Any, ...]) -> bool:
    """What may change while the rows stay the same: the token's expiry and the period."""
    expires = token[list(_TOKENS.c.keys()).index("expires_at")]
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    return expires > datetime.now(UTC) and caller.agreement.is_in_period(today())
