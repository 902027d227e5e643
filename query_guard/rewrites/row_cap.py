"""QG-103: no result has more rows than the agreement's ``disclosure.max_result_rows``."""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import GuardContext
from query_guard.findings import Finding

RULE = "QG-103"


def rewrite(expr: exp.Expression, ctx: GuardContext) -> tuple[exp.Expression, list[Finding]]:
    cap = ctx.agreement.disclosure.max_result_rows
    article = ctx.clause("disclosure.max_result_rows")
    limit = expr.args.get("limit")
    if limit is not None:
        value = limit.expression
        if not (isinstance(value, exp.Literal) and value.is_int):
            return expr, [
                Finding(RULE, f"LIMIT must be a whole number no greater than {cap}", article)
            ]
        if int(value.name) <= cap:
            return expr, []
    # In place: the guard never reads the tree it handed over again.
    tree = expr.limit(cap, copy=False)
    return tree, [Finding(RULE, f"the result is limited to {cap} rows", article, action="rewrite")]
