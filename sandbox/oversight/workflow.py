"""States and transitions as data, shared by every kind of case in this package.

A :class:`Workflow` is a table ``(from, to) -> whether the move must carry an
answer``. :func:`advance` is the one place a case changes state: it refuses a
move not in the table (naming the moves that are allowed), refuses a move that
must be answered but is not, and records the move in the audit record in the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from sandbox.audit.record import record
from sandbox.db.base import utcnow
from sandbox.errors import InvalidStateTransition, ValidationFailed
from sandbox.oversight.models import Handled


@dataclass(frozen=True)
class Workflow:
    """The lifecycle of one kind of case, e.g. ``Workflow("tipoff", "Shanghai Art.27", {...},
    transition_rule="tipoff-transition", answer_rule="tipoff-answer")``."""

    #: The audit action prefix and the name refusals use (``tipoff`` -> ``tipoff.answered``).
    name: str
    article: str
    #: (from, to) -> the move must carry an answer to whoever raised the case. Keys are
    #: StrEnum members, which equal (and hash as) their plain string values.
    transitions: Mapping[tuple[StrEnum, StrEnum], bool]
    #: The rule ids of a move not in the table and of a move missing its answer, spelled
    #: out so that the register of rules finds them (``tipoff-transition``).
    transition_rule: str
    answer_rule: str

    def allowed(self, current: str) -> list[str]:
        return sorted(str(to) for (frm, to) in self.transitions if frm == current)

    def check(self, current: str, to: str, answer: str) -> None:
        """Refuse a move not in the table (an unknown state included), or one that must be
        answered and is not."""
        needs_answer = self.transitions.get((current, to))
        if needs_answer is None:
            raise InvalidStateTransition(
                f"a {self.name} that is {current} cannot become {to}; allowed: "
                f"{', '.join(self.allowed(current)) or 'nothing (it is closed)'}",
                rule=self.transition_rule,
                article=self.article,
            )
        if needs_answer and not answer.strip():
            raise ValidationFailed(
                f"moving a {self.name} to {to} needs an answer to whoever raised it",
                rule=self.answer_rule,
                article=self.article,
            )


def advance(
    session: Session,
    workflow: Workflow,
    case: Handled,
    *,
    to: str,
    actor: str,
    object: str,
    answer: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Move ``case`` to ``to`` after :meth:`Workflow.check`, with its audit event."""
    workflow.check(case.status, to, answer)
    previous = case.status
    case.status = str(to)
    case.answer = answer.strip() or case.answer
    case.updated_at = utcnow()
    record(
        session,
        actor=actor,
        action=f"{workflow.name}.{to}",
        object=object,
        details={"from": previous, "article": workflow.article, **(details or {})},
    )
