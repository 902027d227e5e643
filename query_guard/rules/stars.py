"""QG-015: stars only where sqlglot expands them exactly as DuckDB would.

The guard checks the columns a query names, and expands ``*`` itself, from its
own schema, into named columns. A star that DuckDB expands by itself reaches
columns the guard never saw: ``SELECT * LIKE '%patient%'`` returns the
identifier past QG-007, ``ORDER BY * LIKE …`` orders by a pseudonym, and over
a stored table it would reach hidden build columns (the contribution rank).
These are ``* LIKE``/``ILIKE``/``SIMILAR TO``/``GLOB`` (and their negations),
``COLUMNS(…)`` and ``*COLUMNS(…)`` in any form, a star inside any expression
or function argument, ``* AS x``, and ``ORDER BY *``/``GROUP BY *`` (which
DuckDB reads as ``ALL``). So a star is allowed in two places only: as a whole
projection (``*`` or ``t.*``, with ``EXCLUDE``/``REPLACE``/``RENAME``, which
qualification rewrites into the same named columns DuckDB would give), and as
``count(*)``. :data:`EXPANDED` checks the qualified tree again and fails
closed: a star that survived qualification anywhere but ``count(*)`` would be
DuckDB's to expand.
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding

RULE = "QG-015"
HOW = (
    "name the columns you need (SELECT district, cost …), or use a plain * or t.* "
    "(with EXCLUDE, REPLACE or RENAME if you like) as a whole projection, or count(*)"
)


def _star_of(node: exp.Expression) -> exp.Star | None:
    """The star a node stands for: ``*`` itself, or ``t.*`` (a column whose name is a star)."""
    if isinstance(node, exp.Star):
        return node
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
        return node.this
    return None


#: Where a misplaced star stands, in words the researcher wrote.
_PLACES: dict[type[exp.Expression], str] = {
    exp.Ordered: "ORDER BY",
    exp.Group: "GROUP BY",
    exp.Where: "WHERE",
    exp.Having: "HAVING",
    exp.Alias: "an alias (* AS x)",
    exp.Like: "* LIKE",
    exp.ILike: "* ILIKE",
    exp.SimilarTo: "* SIMILAR TO",
    exp.Glob: "* GLOB",
    exp.RegexpLike: "* REGEXP",
}


def _place(node: exp.Expression) -> str:
    parent = node.parent
    if parent is None:
        return "the query"
    if type(parent) in _PLACES:
        return _PLACES[type(parent)]
    if isinstance(parent, exp.Func):
        return f"a function argument ({parent.sql_name().lower()})"
    return f"an expression ({parent.key.upper()})"


def _is_projection(node: exp.Expression) -> bool:
    parent = node.parent
    return isinstance(parent, exp.Select) and node.arg_key == "expressions"


def _is_count_star(node: exp.Expression) -> bool:
    return isinstance(node, exp.Star) and isinstance(node.parent, exp.Count)


def _problem(node: exp.Expression, *, qualified: bool) -> str | None:
    if isinstance(node, exp.Columns):
        return "COLUMNS(...) and *COLUMNS(...) select columns by pattern in DuckDB, not the guard"
    star = _star_of(node)
    if star is None or (isinstance(node, exp.Star) and isinstance(node.parent, exp.Column)):
        return None  # not a star, or the star inside t.* (judged as the column)
    if star.args.get("ilike") is not None:
        return "* ILIKE '…' selects columns by pattern in DuckDB, not in the guard"
    if _is_count_star(node):
        return None
    if _is_projection(node):
        if qualified:
            return "this star was not expanded into named columns by the guard"
        return None
    return f"a star in {_place(node)} is expanded or read by DuckDB itself, not by the guard"


def _findings(expr: exp.Expression, *, qualified: bool) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for node in expr.walk():
        what = _problem(node, qualified=qualified)
        if what and what not in seen:
            seen[what] = Finding(
                RULE,
                f"{what}, so the columns it reaches escape every other check; {HOW}",
                USE_WITHIN_SCENARIO,
            )
    return list(seen.values())


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    """On the parsed tree: every star pattern and star outside a projection or count(*)."""
    return _findings(expr, qualified=False)


class _Expanded:
    """The same rule on the qualified tree: no star may survive qualification."""

    @staticmethod
    def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
        return _findings(expr, qualified=True)


#: Registered among the scope rules: fails closed if qualification ever leaves a star.
EXPANDED = _Expanded()
