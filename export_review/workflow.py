"""Export request states, the moves between them, and who may make each move.

Modelled on OpenSAFELY's airlock: states and transitions are data, the author
never reviews their own request, and every refusal says why. Reviewers are the
dataset's provider (R4, R6); an agreement may require two independent reviewers.
"""

from __future__ import annotations

from enum import StrEnum

from sandbox.accounts.models import Role, User
from sandbox.errors import InvalidStateTransition, PermissionDenied

#: The provider fixes and checks the conditions of use under the agreement (Shanghai Art.15);
#: the output leaves only as the agreement's review clause says.
ART_REVIEW = "Shanghai Art.15; agreement clause review"


class ExportStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"  # handed in; automatic checks run at once
    checked = "checked"  # automatic checks passed (possibly with cells sent to review)
    in_review = "in_review"  # a provider reviewer has taken it up
    approved = "approved"
    returned = "returned"  # back to the author for changes (automatic or by a reviewer)
    rejected = "rejected"
    released = "released"  # the signed bundle exists and may be downloaded
    revoked = "revoked"  # a released bundle withdrawn by the provider
    withdrawn = "withdrawn"  # the author gave up


class ExportAction(StrEnum):
    submit = "submit"
    pass_checks = "pass_checks"
    fail_checks = "fail_checks"
    start_review = "start_review"
    approve = "approve"
    return_ = "return"
    reject = "reject"
    release = "release"
    revoke = "revoke"
    withdraw = "withdraw"


S, A = ExportStatus, ExportAction

TRANSITIONS: dict[tuple[ExportStatus, ExportAction], ExportStatus] = {
    (S.draft, A.submit): S.submitted,
    (S.returned, A.submit): S.submitted,
    (S.submitted, A.pass_checks): S.checked,
    (S.submitted, A.fail_checks): S.returned,
    (S.checked, A.start_review): S.in_review,
    (S.in_review, A.approve): S.approved,
    (S.in_review, A.return_): S.returned,
    (S.in_review, A.reject): S.rejected,
    (S.approved, A.release): S.released,
    (S.released, A.revoke): S.revoked,
    **{(s, A.withdraw): S.withdrawn for s in (S.draft, S.checked, S.in_review, S.returned)},
}

#: Moves a reviewer makes, and moves only the author makes.
REVIEWER_ACTIONS = frozenset({A.start_review, A.approve, A.return_, A.reject, A.revoke})
AUTHOR_ACTIONS = frozenset({A.submit, A.withdraw})
#: Moves that must say why.
NEEDS_REASON = frozenset({A.return_, A.reject, A.revoke})


def next_status(current: str, action: ExportAction) -> ExportStatus:
    try:
        return TRANSITIONS[(ExportStatus(current), action)]
    except KeyError:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == current)
        raise InvalidStateTransition(
            f"an export request that is {current} cannot {action.value}; allowed: "
            f"{', '.join(allowed) or 'nothing'}",
            rule="export-transition",
        ) from None


def check_user_can_review(user: User, *, author: str, provider: str, kind: str = "export") -> None:
    """Raise unless ``user`` may review: the data's provider, and never the author.
    ``kind`` names the requests (``export``, or ``import`` for files brought into a
    workspace, reviewed alike) in the refusal and its rule."""
    if user.username == author:
        raise PermissionDenied(
            f"the author of an {kind} request never reviews it",
            rule="import-author-reviews" if kind == "import" else "export-author-reviews",
            article=ART_REVIEW,
        )
    if user.role != Role.provider or user.organisation != provider:
        raise PermissionDenied(
            f"{kind} requests are reviewed by the data's provider ({provider})",
            rule="import-reviewer" if kind == "import" else "export-reviewer",
            article=ART_REVIEW,
        )


def user_can_review(user: User, *, author: str, provider: str, kind: str = "export") -> bool:
    """The boolean twin of :func:`check_user_can_review`, for pages."""
    try:
        check_user_can_review(user, author=author, provider=provider, kind=kind)
    except PermissionDenied:
        return False
    return True


def state_diagram() -> str:
    """The lifecycle as Mermaid text, generated from TRANSITIONS (for the docs)."""
    lines = ["stateDiagram-v2"]
    lines += [f"    {s.value} --> {t.value}: {a.value}" for (s, a), t in TRANSITIONS.items()]
    return "\n".join(lines)
