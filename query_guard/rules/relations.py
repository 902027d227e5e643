"""QG-004: relations are only the agreement's datasets (and the query's own CTEs).

Refuses table functions (read_csv, read_parquet, glob, range, generate_series,
duckdb_* and pragma_* catalogue functions), file-path replacement scans
(``FROM 'file.csv'``), names qualified with a catalog or schema
(``memory.main.x``, ``information_schema.tables``), unknown tables, and CTEs
that shadow a dataset name (Shanghai Art.28: use only what the agreement grants).
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding

RULE = "QG-004"


def _cte_names(expr: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in expr.find_all(exp.CTE)}


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    datasets = sorted(ctx.agreement.datasets)
    allowed = f"the agreement's datasets ({', '.join(datasets)}) by their plain names"
    article = f"{ctx.clause('datasets')}; {USE_WITHIN_SCENARIO}"
    ctes = _cte_names(expr)
    found: list[Finding] = []
    for name in sorted(ctes & set(datasets)):
        found.append(
            Finding(
                RULE,
                f"a WITH query may not be named {name}, which is a dataset "
                "name; give it another name",
                article,
            )
        )
    for table in expr.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            found.append(
                Finding(
                    RULE,
                    f"table functions are not allowed in FROM; only {allowed} may be queried",
                    article,
                )
            )
        elif table.args.get("db") or table.args.get("catalog"):
            found.append(
                Finding(
                    RULE,
                    f"qualified name {table.sql('duckdb')} is not allowed; "
                    f"only {allowed} may be queried",
                    article,
                )
            )
        elif table.name.lower() not in ctes and table.name.lower() not in datasets:
            found.append(
                Finding(
                    RULE,
                    f"relation {table.name!r} is not in the agreement; only "
                    f"{allowed} may be queried",
                    article,
                )
            )
    return found
