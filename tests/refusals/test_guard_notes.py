"""What the guard says of a query it rewrites, read as the notebook client shows it: the
rule the register lists, in Chinese."""

from __future__ import annotations

from query_guard.anonymise.positions import POSITIONS
from query_guard.guard import check_query
from sandbox.refusal_text import say
from tests.query_guard.cases import load_cases
from tests.query_guard.conftest import Built


def test_a_cast_that_could_fail_is_made_safe_and_said_so(record: Built) -> None:
    decision = check_query("SELECT CAST(district AS INTEGER) AS d FROM visits", record.ctx)
    notes = {r.rule: r for r in decision.reasons if r.action == "rewrite"}
    assert decision.action == "rewrite" and "QG-101" in notes
    shown = say("QG-101", notes["QG-101"].message, "zh")
    assert shown and shown.startswith("行级表达式已包裹在 TRY(...) 中")


def test_every_position_refusal_reads_in_chinese_through_and_through(aggregate: Built) -> None:
    """QG-020 fills its text with the position, why it allows what it does and what to write
    instead: each of those reads in Chinese too, not as English inside a Chinese sentence."""
    english = [f for p in POSITIONS.values() for f in (p.why, p.instead)]
    english += [" is not allowed as ", "column", "identifier", "subquery", "entity", "DISTINCT is"]
    positions_seen = set()
    for case in (param.values[0] for param in load_cases()):
        if case.rule != "QG-020" or case.mode != "aggregate":
            continue
        for reason in check_query(case.sql, aggregate.ctx).reasons:
            if reason.rule != "QG-020":
                continue
            shown = say("QG-020", reason.message, "zh")
            assert shown, reason.message
            assert not [text for text in english if text in shown], shown
            positions_seen.add(reason.message.split(" is not allowed as ")[1].split(" in ")[0])
    assert positions_seen == set(POSITIONS) - {"per-entity aggregate"}
