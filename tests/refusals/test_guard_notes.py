"""What the guard says of a query it rewrites, read as the notebook client shows it: the
rule the register lists, in Chinese."""

from __future__ import annotations

from query_guard.guard import check_query
from sandbox.refusal_text import say
from tests.query_guard.conftest import Built


def test_a_cast_that_could_fail_is_made_safe_and_said_so(record: Built) -> None:
    decision = check_query("SELECT CAST(district AS INTEGER) AS d FROM visits", record.ctx)
    notes = {r.rule: r for r in decision.reasons if r.action == "rewrite"}
    assert decision.action == "rewrite" and "QG-101" in notes
    shown = say("QG-101", notes["QG-101"].message, "zh")
    assert shown and shown.startswith("行级表达式已包裹在 TRY(...) 中")
