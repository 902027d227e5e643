"""QG-010: no disclosive aggregates.

Order statistics and picks (min, max, median, quantiles, mode, arg_max,
any_value, first, last, bool_or …) return one member's value, so in aggregate
mode they are allowed only in a per-entity pre-aggregation (a block grouped
by the entity, whose rows are that one entity's). Collecting aggregates
(list, string_agg) pack many rows into one cell and would bypass the row cap,
so they are refused in both modes.
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import GuardContext
from query_guard.findings import Finding
from query_guard.lineage import groups_by_entity
from query_guard.policy import COLLECTING_AGGREGATES, ORDER_STATISTICS, function_name
from query_guard.rules.shared_scopes import scopes

RULE = "QG-010"
#: Computed in aggregate mode from a window of entities and perturbed
#: (:mod:`query_guard.anonymise`), so never one member's value.
PERTURBED_QUANTILES = frozenset({exp.Median, exp.PercentileCont})


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    found = []
    for scope in scopes(expr):
        query = scope.expression
        if not isinstance(query, exp.Select):
            continue
        for func in query.find_all(exp.Func):
            if func.find_ancestor(exp.Select) is not query:
                continue
            name = function_name(func)
            if type(func) in COLLECTING_AGGREGATES:
                found.append(
                    Finding(
                        RULE,
                        f"{name}() collects many values into one cell and is "
                        "not allowed; return rows (record mode) or aggregates",
                        ctx.clause("disclosure.max_result_rows"),
                    )
                )
            elif (
                type(func) in ORDER_STATISTICS - PERTURBED_QUANTILES
                and ctx.mode == "aggregate"
                and not groups_by_entity(scope, ctx)
            ):
                found.append(
                    Finding(
                        RULE,
                        f"{name}() reveals a single member's value; use "
                        "count, sum, avg, stddev or variance, or use it inside a "
                        "WITH query grouped by the entity",
                        ctx.clause("disclosure.min_group_size"),
                    )
                )
    return found
