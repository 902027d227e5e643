"""QG-018: no output name reused within the SELECT list that defines it.

DuckDB lets ``SELECT x || x AS a, a || a AS b, b || b AS c`` refer to earlier
outputs of the same list; sqlglot resolves each such reference by copying the
aliased expression in, so a chain of n names grows the checked tree as 2^n
(depth 14: 1.5 s of analysis and 800 KB of SQL; deeper, the guard stalls).
Refused before qualification, with the way to write it instead.
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding

RULE = "QG-018"


def _reused(select: exp.Select, columns: set[str]) -> str | None:
    earlier: set[str] = set()
    for projection in select.expressions:
        for column in projection.find_all(exp.Column):
            if column.find_ancestor(exp.Select) is not select or column.table:
                continue
            if column.name in earlier and column.name not in columns:
                return column.name
        if isinstance(projection, exp.Alias):
            earlier.add(projection.alias)
    return None


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    columns = {c for table in ctx.schema.values() for c in table}
    for select in expr.find_all(exp.Select):
        name = _reused(select, columns)
        if name is not None:
            return [
                Finding(
                    RULE,
                    f"the output name {name!r} is used again in the same SELECT list; repeat "
                    "its expression, or define it in a WITH query and select from that",
                    USE_WITHIN_SCENARIO,
                )
            ]
    return []
