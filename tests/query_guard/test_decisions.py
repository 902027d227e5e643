"""Decisions remembered per worker: the same text under the same context answers with the
same decision without deciding again; any change to the agreement, the catalogue or the
suspensions is a new key."""

from __future__ import annotations

from dataclasses import replace

from query_guard import decisions as module
from query_guard.decisions import Decisions
from query_guard.guard import GuardContext, check_query

SQL = "SELECT district, count(*) FROM visits GROUP BY district"


def test_a_repeated_text_is_decided_once_and_alike(aggregate, monkeypatch) -> None:
    calls: list[str] = []

    def counted(sql: str, ctx: GuardContext):
        calls.append(sql)
        return check_query(sql, ctx)

    monkeypatch.setattr(module, "check_query", counted)  # counts the real guard's calls
    memory = Decisions()
    first = memory.decide(SQL, aggregate.ctx)
    assert memory.decide(SQL, aggregate.ctx) is first and calls == [SQL]
    assert first.sql == check_query(SQL, aggregate.ctx).sql
    # The same agreement and catalogue rebuilt (as each request does): the same key.
    again = GuardContext(aggregate.ctx.agreement, dict(aggregate.ctx.catalog))
    assert memory.decide(SQL, again) is first and calls == [SQL]
    # A changed agreement, a suspension: decided anew, and differently where it matters.
    stricter = replace(
        aggregate.ctx,
        agreement=aggregate.ctx.agreement.model_copy(
            update={
                "disclosure": aggregate.ctx.agreement.disclosure.model_copy(
                    update={"min_group_size": 50}
                )
            }
        ),
    )
    assert memory.decide(SQL, stricter).sql != first.sql and len(calls) == 2
    suspended = replace(aggregate.ctx, suspended=frozenset({"visits"}))
    assert memory.decide(SQL, suspended).action == "block" and len(calls) == 3


def test_the_memory_is_bounded(aggregate) -> None:
    memory = Decisions(size=2)
    texts = [
        f"SELECT district, count(*) FROM visits WHERE cost > {n}00 GROUP BY 1" for n in (1, 2, 3)
    ]
    for text in texts:
        memory.decide(text, aggregate.ctx)
    assert [sql for _, sql in memory._kept.oldest_first()] == texts[1:]
