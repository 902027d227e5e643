"""What the guard says of a query it rewrites, read as the notebook client shows it: the
rule the register lists, in Chinese."""

from __future__ import annotations

import pytest

from query_guard.anonymise.positions import POSITIONS
from query_guard.guard import check_query
from sandbox.refusal_text import say
from tests.query_guard.cases import load_cases
from tests.query_guard.conftest import Built
from tests.web.page_text import IDENTIFIER, LATIN_WORD


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


#: Queries each of the guard's syntax rules refuses, with what it names in its message.
SYNTAX_REFUSALS = {
    "QG-001": "DELETE FROM visits",
    "QG-002": "WITH RECURSIVE r AS (SELECT 1) SELECT count(*) FROM visits, r",
    "QG-008": "SELECT count(*) FROM visits a JOIN visits b ON a.cost = b.cost",
    "QG-015": "SELECT count(*) FROM visits ORDER BY *",
}


@pytest.mark.parametrize("rule", sorted(SYNTAX_REFUSALS))
def test_syntax_refusals_read_in_chinese_but_for_sql(record: Built, rule: str) -> None:
    """What the syntax rules found and what they allow reads in Chinese; only SQL, its
    keywords and DuckDB's name stay in Latin letters."""
    sql = SYNTAX_REFUSALS[rule]
    reasons = [r for r in check_query(sql, record.ctx).reasons if r.rule == rule]
    assert reasons, f"{rule} did not refuse {sql}"
    for reason in reasons:
        shown = say(rule, reason.message, "zh")
        assert shown, reason.message
        prose = IDENTIFIER.sub("", shown)  # names, calls and paths (visits.patient_id, t.*)
        words = {w for w in LATIN_WORD.findall(prose) if not w.isupper() and w not in sql}
        assert words <= {"DuckDB", "district", "cost"}, shown
