"""QG-016: no string growth on top of string growth (unbounded per-row cost).

``replace(replace(x, 'a', 'aaaa…'), 'a', 'aaaa…')`` multiplies a string's
length at every level, so one row can take seconds — and when only one
person's row grows (``CASE WHEN … THEN x END``), the time a query takes tells
whether a condition on that person holds; past the memory limit it becomes an
error oracle. The engine's interrupt is only seen between chunks of rows, so a
timeout does not bound it either. Growth is therefore allowed once per value:

- a *growing* ``replace`` (one whose replacement may be longer than what it
  replaces) may not take as argument anything that grew — another growing
  replace, ``concat``, ``||``, ``repeat``, ``lpad``/``rpad`` (QG-003 refuses
  those two already) — written inside it or read from a column that another
  query block (WITH query, derived table) built that way;
- ``concat``/``||`` may not grow again a column another block already grew,
  which through a chain of WITH queries would double a string at every step.

A replace with literal arguments whose replacement is not longer than its
non-empty search string cannot grow its input and is allowed at any depth
(``replace(replace(x, '-', ''), ' ', '')``), and ``a || '-' || b`` written in
one expression grows only by the query's own text.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding
from query_guard.rules.shared_scopes import scopes

RULE = "QG-016"

#: Functions whose output can be longer than their inputs together (besides ``replace``,
#: judged by its arguments in :func:`_grows`). Several are refused by QG-003 as well; they
#: are listed so that this rule does not depend on another one.
GROWING: tuple[type[exp.Expression], ...] = (
    exp.Concat,
    exp.ConcatWs,
    exp.DPipe,
    exp.Repeat,
    exp.Pad,
    exp.RegexpReplace,
    exp.Overlay,
    exp.Format,
    exp.GroupConcat,
    exp.ArrayToString,
)
#: String growth written in one expression; a column of another block grown again is refused.
CONCATENATING: tuple[type[exp.Expression], ...] = (exp.Concat, exp.ConcatWs, exp.DPipe)


def _shrinking_replace(node: exp.Replace) -> bool:
    """A replace that can never make its input longer: literal search and replacement,
    the replacement no longer than the (non-empty) search string."""
    search, replacement = node.args.get("expression"), node.args.get("replacement")
    if not (isinstance(search, exp.Literal) and search.is_string):
        return False
    if not (isinstance(replacement, exp.Literal) and replacement.is_string):
        return False
    return search.this != "" and len(replacement.this) <= len(search.this)


def _grows(node: exp.Expression) -> bool:
    if isinstance(node, exp.Replace):
        return not _shrinking_replace(node)
    return isinstance(node, GROWING)


class _Lineage:
    """Follow column references of a qualified tree to the expressions that define them."""

    def __init__(self, tree: exp.Expression) -> None:
        self._scope_of: dict[int, Scope] = {id(s.expression): s for s in scopes(tree)}

    def scope_of(self, node: exp.Expression) -> Scope | None:
        owner = node.find_ancestor(exp.Select, exp.SetOperation)
        return self._scope_of.get(id(owner)) if owner is not None else None

    def definitions(self, column: exp.Column) -> list[tuple[exp.Expression, Scope]]:
        """The expressions (with their blocks) that a column of a derived source carries."""
        scope = self.scope_of(column)
        source = scope.sources.get(column.table) if scope else None
        return _outputs(source, column.name) if isinstance(source, Scope) else []

    def growth_in(
        self, expr: exp.Expression, *, textual: bool, seen: set[int] | None = None
    ) -> exp.Expression | None:
        """The first growing node that ``expr`` contains (when ``textual``) or that a column
        it reads carries from another block (always, through any number of blocks)."""
        seen = set() if seen is None else seen
        for node in expr.walk():
            if textual and node is not expr and _grows(node):
                return node
            if isinstance(node, exp.Column) and id(node) not in seen:
                seen.add(id(node))
                for definition, _ in self.definitions(node):
                    if _grows(definition):
                        return definition
                    found = self.growth_in(definition, textual=True, seen=seen)
                    if found is not None:
                        return found
        return None


def _outputs(scope: Scope, name: str) -> list[tuple[exp.Expression, Scope]]:
    query = scope.expression
    if isinstance(query, exp.SetOperation):
        names = query.named_selects
        if name not in names:
            return []
        position = names.index(name)
        found: list[tuple[exp.Expression, Scope]] = []
        for branch in scope.set_operation_scopes:
            branch_names = branch.expression.named_selects
            if position < len(branch_names):
                found += _outputs(branch, branch_names[position])
        return found
    if not isinstance(query, exp.Select):
        return []
    return [(p.unalias(), scope) for p in query.expressions if p.alias_or_name == name]


def _name(node: exp.Expression) -> str:
    return "||" if isinstance(node, exp.DPipe) else f"{node.sql_name().lower()}()"


def _finding(outer: exp.Expression, inner: exp.Expression) -> Finding:
    return Finding(
        RULE,
        f"{_name(outer)} over the result of {_name(inner)} can grow a string without bound, "
        "so one row "
        "could cost the engine seconds or its memory; grow a value at most once: apply "
        "replace() to a column directly (nested replace() is allowed when each replacement "
        "is a literal no longer than what it replaces, e.g. replace(replace(x, '-', ''), "
        "' ', '')), write a concatenation in one expression rather than across WITH "
        "queries, and compare with contains(), starts_with() or LIKE instead of building "
        "strings",
        USE_WITHIN_SCENARIO,
    )


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    lineage = _Lineage(expr)
    found: dict[str, Finding] = {}
    for node in expr.walk():
        inner = None
        if isinstance(node, exp.Replace) and _grows(node):
            inner = lineage.growth_in(node, textual=True)
        elif isinstance(node, CONCATENATING):
            inner = lineage.growth_in(node, textual=False)
        if inner is not None:
            finding = _finding(node, inner)
            found.setdefault(finding.message, finding)
    return list(found.values())
