"""Guard rules: one per module, each ``check(expr, ctx) -> list[Finding]``, pure.

``SYNTAX_RULES`` need only the parsed tree and run before qualification (so
that, for instance, a suspended dataset is refused with its own reason rather
than as an unknown table); ``SCOPE_RULES`` run on the qualified tree.
"""

from query_guard.rules import (
    aggregate_output,
    columns,
    cost,
    disclosive,
    functions,
    identifiers,
    joins,
    lateral_alias,
    nodes,
    relations,
    stars,
    statement,
    subqueries,
    suspended,
)

SYNTAX_RULES = (statement, nodes, functions, stars, lateral_alias, relations, suspended)
SCOPE_RULES = (
    columns,
    identifiers,
    joins,
    subqueries,
    aggregate_output,
    disclosive,
    stars.EXPANDED,
    cost,
)

__all__ = ["SCOPE_RULES", "SYNTAX_RULES"]
