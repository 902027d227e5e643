"""Agreement states and the transitions between them, as data (R9; Shanghai Art.26, 36).

The table is the single source of truth: the service refuses any move not in
it, and documentation can be generated from it.
"""

from __future__ import annotations

from enum import StrEnum

from sandbox.agreements.models import AgreementStatus as S
from sandbox.errors import InvalidStateTransition


class AgreementAction(StrEnum):
    suspend = "suspend"  # security measures not kept: access closed, rectify by a deadline
    reinstate = "reinstate"  # rectified in time
    terminate = "terminate"  # ended early (not rectified, violation, or by the parties)
    expire = "expire"  # past valid_until


TRANSITIONS: dict[tuple[S, AgreementAction], S] = {
    (S.active, AgreementAction.suspend): S.suspended,
    (S.suspended, AgreementAction.reinstate): S.active,
    (S.active, AgreementAction.terminate): S.terminated,
    (S.suspended, AgreementAction.terminate): S.terminated,
    (S.active, AgreementAction.expire): S.expired,
    (S.suspended, AgreementAction.expire): S.expired,
}

#: States in which the agreement has ended for good: keys and workspace data are destroyed (R16).
ENDED = frozenset({S.terminated, S.expired})


def next_status(current: str, action: AgreementAction) -> S:
    """The state ``action`` leads to from ``current``, or a refusal naming what is allowed."""
    try:
        return TRANSITIONS[(S(current), action)]
    except KeyError:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == current)
        raise InvalidStateTransition(
            f"an agreement that is {current} cannot {action.value}; allowed: "
            f"{', '.join(allowed) or 'nothing (it has ended)'}",
            rule="agreement-transition",
        ) from None
