"""QG-003: only allowlisted functions.

Refuses table functions used as values, file readers, settings and metadata
functions (current_setting, duckdb_*, pragma_*, version), error(), random
numbers, string generators (repeat, lpad) and any function sqlglot does not
know. Order statistics and collecting aggregates are QG-010's to refuse.
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding
from query_guard.policy import (
    ALLOWED_FUNCTIONS_TEXT,
    ALLOWED_NODES,
    COLLECTING_AGGREGATES,
    ORDER_STATISTICS,
    RANKING_WINDOW_FUNCTIONS,
    SAFE_AGGREGATES,
    SCALAR_FUNCTIONS,
    function_name,
)

RULE = "QG-003"


def _allowed(func: exp.Func) -> bool:
    kind = type(func)
    if kind in ALLOWED_NODES | SCALAR_FUNCTIONS | SAFE_AGGREGATES:
        return True
    if kind in ORDER_STATISTICS | COLLECTING_AGGREGATES:
        return True  # refused or allowed by QG-010, with its own reason
    return kind in RANKING_WINDOW_FUNCTIONS and isinstance(func.parent, exp.Window)


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    names = sorted({function_name(f) for f in expr.find_all(exp.Func) if not _allowed(f)})
    return [
        Finding(
            RULE,
            f"function {name}() is not allowed; allowed functions are {ALLOWED_FUNCTIONS_TEXT}",
            USE_WITHIN_SCENARIO,
        )
        for name in names
    ]
