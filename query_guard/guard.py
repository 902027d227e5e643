"""The guard: parse once, qualify, check every rule, rewrite, and check again.

``check_query`` decides *allow*, *rewrite* or *block* for one SQL text under
one agreement. It fails closed: a parse error, an unknown table or column, an
ambiguous reference, or any internal error in analysis is a block. The SQL it
returns is regenerated from the checked tree, and it is checked once more
from its text: the rewrites must reach a fixed point, so what runs is exactly
what was checked. In aggregate mode the checked tree is then compiled so that
every aggregate over the datasets is anonymised (:mod:`query_guard.anonymise`).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify

from query_guard.anonymise import emit, plan
from query_guard.anonymise.terms import Refused
from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Decision, Finding, Reason
from query_guard.rewrites import REWRITES
from query_guard.rules import SCOPE_RULES, SYNTAX_RULES, statement
from query_guard.rules.columns import finding as column_finding
from query_guard.rules.shared_scopes import sharing

__all__ = ["Decision", "Finding", "GuardContext", "Reason", "check_query"]

DIALECT = "duckdb"
INTERNAL_RULE = "QG-000"
FIXPOINT_RULE = "QG-012"
ANONYMISED_RULE = "QG-022"
#: Checked on the qualified tree, with aggregate mode's allowlist per position last.
CHECKS = (*SCOPE_RULES, plan)
#: Checked again on the rewritten text. The allowlist is not: the anonymiser plans that
#: very text once more and refuses what it refuses, so a third planning would only repeat it.
RECHECKS = SCOPE_RULES


def _block(findings: list[Finding]) -> Decision:
    return Decision("block", None, [f for f in findings if f.action == "block"])


def _parse(sql: str) -> exp.Expression | Finding:
    try:
        trees = [t for t in sqlglot.parse(sql, read=DIALECT) if t is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0][:200]
        return statement.finding(f"the query could not be parsed ({first})")
    if len(trees) != 1:
        return statement.finding(f"{len(trees)} statements were given")
    return trees[0]


def _name_outputs(tree: exp.Expression) -> None:
    """Keep result column names readable: name unnamed outputs after their expression
    (qualification would otherwise call them ``_col_n``)."""
    while isinstance(tree, exp.SetOperation):
        tree = tree.this
    if isinstance(tree, exp.Select):
        named = [
            p
            if p.output_name or isinstance(p, exp.Star)
            else exp.alias_(p, p.sql(DIALECT, copy=False), quoted=True, copy=False)
            for p in tree.expressions
        ]
        tree.set("expressions", named)


def _run(rules: tuple, tree: exp.Expression, ctx: GuardContext) -> list[Finding]:
    return [f for rule in rules for f in rule.check(tree, ctx)]


def _evaluate(
    sql: str, ctx: GuardContext, checks: tuple = CHECKS
) -> tuple[Decision, exp.Expression | None]:
    """The decision on ``sql`` and, unless it is blocked, the checked and rewritten tree
    whose text the decision's SQL is."""
    tree = _parse(sql)
    if isinstance(tree, Finding):
        return _block([tree]), None
    findings = _run(SYNTAX_RULES, tree, ctx)
    if findings:
        return _block(findings), None
    _name_outputs(tree)
    try:
        tree = qualify(
            tree,
            schema=ctx.sqlglot_schema,
            dialect=DIALECT,
            validate_qualify_columns=True,
            identify=True,
        )
    except SqlglotError as exc:
        return _block([column_finding(ctx, str(exc).splitlines()[0][:200])]), None
    with sharing(tree):  # the rules are pure: one set of scopes serves them all
        findings = _run(checks, tree, ctx)
    if findings:
        return _block(findings), None
    notes: list[Finding] = []
    for rewrite in REWRITES:
        tree, found = rewrite.rewrite(tree, ctx)
        if any(f.action == "block" for f in found):
            return _block(found), None
        notes.extend(found)
    # Without a copy: DuckDB's generator changes no node of a checked query (it would only
    # rewrite CONNECT BY and Snowflake's sequences, which no checked query holds), so the
    # tree still is what the text says.
    sql = tree.sql(DIALECT, comments=False, copy=False)
    return Decision("rewrite" if notes else "allow", sql, notes), tree


def check_query(sql: str, ctx: GuardContext) -> Decision:
    """Decide whether ``sql`` may run under ``ctx``'s agreement, and as what SQL."""
    try:
        first, _ = _evaluate(sql, ctx)
        if first.sql is None:
            return first
        # The text checked again from scratch; its tree is what aggregate mode compiles
        # (parsing the text a third time cost a tenth of the decision).
        again, checked = _evaluate(first.sql, ctx, RECHECKS)
    except Exception as exc:  # fail closed on anything the analysis did not foresee
        return _block(
            [
                Finding(
                    INTERNAL_RULE,
                    f"the guard could not analyse this query ({type(exc).__name__}); simplify it",
                    USE_WITHIN_SCENARIO,
                )
            ]
        )
    if again.sql is None:
        return again
    if again.sql != first.sql:
        return _block(
            [
                Finding(
                    FIXPOINT_RULE,
                    "the rewritten query did not check out unchanged; simplify it",
                    USE_WITHIN_SCENARIO,
                )
            ]
        )
    if ctx.mode != "aggregate" or checked is None:
        return first
    return _anonymised(first, checked, ctx)


def _anonymised(decision: Decision, checked: exp.Expression, ctx: GuardContext) -> Decision:
    """The checked query (``checked``: the tree whose text ``decision.sql`` is, as the
    re-check left it) compiled so that only anonymised values leave it."""
    try:
        sql = emit.anonymise(checked, ctx)
    except Refused as refused:
        return _block([refused.finding])
    except Exception as exc:  # fail closed
        return _block(
            [
                Finding(
                    INTERNAL_RULE,
                    f"the guard could not anonymise this query ({type(exc).__name__}); simplify it",
                    USE_WITHIN_SCENARIO,
                )
            ]
        )
    note = Finding(
        ANONYMISED_RULE,
        "aggregates are computed from at least "
        f"{ctx.agreement.disclosure.min_group_size} contributing entities (a noisy threshold), "
        "the largest contributions are flattened, and values carry sticky noise",
        ctx.clause("disclosure"),
        action="rewrite",
    )
    return Decision("rewrite", sql, [*decision.reasons, note], checked=decision.sql)
