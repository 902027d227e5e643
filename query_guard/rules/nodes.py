"""QG-002: only allowlisted SQL constructs.

Blocks everything not on ``policy.ALLOWED_NODES``: positional references
(``#1``), ``COLUMNS(...)``, method-call syntax (``x.upper()``), structs, lists,
maps, lambdas, subscripts, PIVOT, LATERAL, QUALIFY, sampling, SELECT INTO,
VALUES, ``EXISTS``, FILTER clauses, recursive CTEs (resource exhaustion),
grouping sets, and casts to anything but simple types.
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding
from query_guard.policy import ALLOWED_NODES, CAST_TARGETS

RULE = "QG-002"
ALLOWED = (
    "SELECT with FROM, JOIN ... ON, WHERE, GROUP BY (incl. ALL), HAVING, ORDER BY, LIMIT, "
    "WITH (non-recursive), UNION/EXCEPT/INTERSECT, CASE, CAST to simple types, arithmetic, "
    "comparisons and the allowed functions"
)


_NAMED: dict[type[exp.Expression], str] = {
    exp.PositionalColumn: "a positional column reference (#n)",
    exp.Columns: "COLUMNS(...)",
    exp.Dot: "method-call or dotted access syntax",
}


def _describe(node: exp.Expression) -> str | None:
    if isinstance(node, exp.With) and node.args.get("recursive"):
        return "WITH RECURSIVE"
    if isinstance(node, exp.DataType) and node.this not in CAST_TARGETS:
        return f"the type {node.sql('duckdb')}"
    if isinstance(node, exp.Distinct) and node.args.get("on"):
        return "DISTINCT ON"
    if type(node) in _NAMED:
        return _NAMED[type(node)]
    if isinstance(node, exp.Func) or type(node) in ALLOWED_NODES:
        return None
    return node.key.upper()


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    found = []
    seen = set()
    for node in expr.walk():
        what = _describe(node)
        if what and what not in seen:
            seen.add(what)
            found.append(
                Finding(RULE, f"{what} is not allowed; allowed are {ALLOWED}", USE_WITHIN_SCENARIO)
            )
    return found
