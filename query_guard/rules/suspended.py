"""QG-005: datasets whose opening is suspended after a rights complaint are refused.

The provider suspends opening at once where needed and the suspension must
reach every workspace using the data (Shanghai Art.22; Wuxi Art.23).
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import SUSPENSION, GuardContext
from query_guard.findings import Finding

RULE = "QG-005"


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    ctes = {cte.alias_or_name.lower() for cte in expr.find_all(exp.CTE)}
    names = sorted(
        {t.name.lower() for t in expr.find_all(exp.Table) if isinstance(t.this, exp.Identifier)}
        - ctes
    )
    return [
        Finding(
            RULE,
            f"dataset {name} is suspended after a rights complaint and cannot be "
            "queried until the provider restores it",
            SUSPENSION,
        )
        for name in names
        if name in ctx.suspended
    ]
