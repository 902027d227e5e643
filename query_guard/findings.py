"""What a rule finds and what the guard decides, in the contract's JSON shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Action = Literal["allow", "rewrite", "block"]


@dataclass(frozen=True)
class Finding:
    """One reason: the rule that fired, what was wrong and what is allowed, and its source.

    ``article`` cites a regulation article or an agreement clause; ``action`` says
    whether the finding blocks the query or records a rewrite the guard made.
    """

    rule: str
    message: str
    article: str | None = None
    action: Literal["block", "rewrite"] = "block"

    def to_dict(self) -> dict[str, str | None]:
        return {"rule": self.rule, "message": self.message, "article": self.article}


#: The contract calls a decision's entries "reasons"; they are findings.
Reason = Finding


@dataclass(frozen=True)
class Decision:
    """The guard's answer: ``sql`` is what may run (``None`` when blocked); in aggregate
    mode ``checked`` is the checked query before it was compiled, from which the guard
    derives ``sql`` alike every time."""

    action: Action
    sql: str | None
    reasons: list[Finding] = field(default_factory=list)
    checked: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "sql": self.sql,
            "reasons": [r.to_dict() for r in self.reasons],
        }
