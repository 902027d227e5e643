"""What the guard reuses instead of rebuilding, checked against rebuilding, on every fixture.

The rules share one set of scopes per tree (:mod:`query_guard.rules.shared_scopes`) and
the rewrites change the tree in place, counting what they changed instead of comparing
it with a copy: each must answer exactly as the slower way did.
"""

from __future__ import annotations

import pytest
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify

from query_guard import guard
from query_guard.rewrites import REWRITES
from query_guard.rules import SYNTAX_RULES
from query_guard.rules.shared_scopes import sharing
from tests.query_guard.cases import Case, load_cases


def _checked_tree(case: Case, ctx: guard.GuardContext) -> exp.Expression | None:
    """The qualified tree the guard's rules see, or None where the guard stops before."""
    tree = guard._parse(case.sql)
    if isinstance(tree, guard.Finding) or guard._run(SYNTAX_RULES, tree, ctx):
        return None
    guard._name_outputs(tree)
    try:
        return qualify(
            tree,
            schema=ctx.sqlglot_schema,
            dialect=guard.DIALECT,
            validate_qualify_columns=True,
            identify=True,
        )
    except SqlglotError:
        return None


@pytest.mark.parametrize("case", load_cases())
def test_shared_scopes_and_in_place_rewrites_answer_as_rebuilt(
    case: Case, aggregate, record
) -> None:
    ctx = {"aggregate": aggregate, "record": record}[case.mode].ctx
    tree = _checked_tree(case, ctx)
    if tree is None:
        return
    rebuilt = guard._run(guard.CHECKS, tree, ctx)
    with sharing(tree):
        shared = guard._run(guard.CHECKS, tree, ctx)
    assert shared == rebuilt
    if rebuilt:
        return
    for rewrite in REWRITES:
        before = tree.copy()
        tree, found = rewrite.rewrite(tree, ctx)
        if any(f.action == "block" for f in found):
            return
        said = any(f.action == "rewrite" for f in found)
        assert said == (tree != before), (rewrite.__name__, tree.sql("duckdb"))
