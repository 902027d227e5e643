"""QG-104: expressions over aggregate, window and subquery values cannot fail.

QG-101 wraps row-level expressions in ``TRY(...)``, but DuckDB refuses TRY
around aggregates, window functions and scalar subqueries. What is computed
*from* such a value is therefore unprotected, and an error there is an oracle:
in ``HAVING count(*)::INT * 2147483647 > 0`` or ``HAVING 1 // (count(*) - 3)``
whether the query fails can depend on one group's value (in record mode an
exact one; in aggregate mode only anonymised values reach HAVING, but an
error there would still tell something about them). The aggregates themselves
can fail too: a SUM or AVG over DECIMAL or HUGEINT values overflows once
enough rows match a condition.

So every operation with such an "opaque" operand is put into a form that
cannot fail, or refused:

- ``+ - * /`` run in DOUBLE (overflow gives ±inf, ``x / 0`` inf or NaN); a
  date minus a date stays as it is; other date arithmetic is refused, and so
  are ``//`` and ``%`` (DuckDB's ``//`` on DOUBLE is plain division, so no
  safe form keeps their meaning: use ``/`` and ``floor()``);
- SUM and AVG add in DOUBLE unless their argument is certainly an integer or
  a DOUBLE (whose sums cannot fail);
- comparisons, IN, BETWEEN, CASE branches, COALESCE, NULLIF, GREATEST and
  LEAST need operands of one kind (numbers, text, dates, booleans; string
  literals and NULL fit any kind): mixing kinds makes DuckDB convert one
  group's value at run time, which can fail;
- numeric functions get DOUBLE arguments, date functions take dates, string
  functions take the value only as the string;
- NTILE and NTH_VALUE need a positive whole-number literal;
- anything else over such a value is refused.
"""

from __future__ import annotations

import contextlib

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.scope import Scope

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding
from query_guard.lineage import scopes
from query_guard.policy import QUERY_CLAUSES, RANKING_WINDOW_FUNCTIONS, SAFE_AGGREGATES

RULE = "QG-104"
ALLOWED = (
    "+ - * / (computed in DOUBLE), comparisons, IN and BETWEEN between values of one kind "
    "(numbers, text, dates), CASE, COALESCE, NULLIF, GREATEST and LEAST of one kind, round, "
    "floor, ceil, abs, sign, ln, log, sqrt, exp, power, date parts of dates, string functions "
    "on text; convert kinds explicitly with TRY_CAST"
)

#: Values DuckDB will not let TRY(...) enclose.
OPAQUE = (exp.AggFunc, exp.Window, exp.Subquery)
_DOUBLE = exp.DataType.Type.DOUBLE
#: Column types whose SUM cannot overflow (integers add up in HUGEINT, floats in DOUBLE).
_EXACT_SUM_TYPES = frozenset(
    {
        exp.DataType.Type.TINYINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.UTINYINT,
        exp.DataType.Type.USMALLINT,
        exp.DataType.Type.UINT,
        exp.DataType.Type.UBIGINT,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.DOUBLE,
    }
)

_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg)
_NUMERIC_FUNCTIONS = (
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Abs,
    exp.Sign,
    exp.Ln,
    exp.Log,
    exp.Sqrt,
    exp.Exp,
    exp.Pow,
)
_DATE_FUNCTIONS = (
    exp.Year,
    exp.Month,
    exp.Quarter,
    exp.Day,
    exp.DayOfWeek,
    exp.DayOfWeekIso,
    exp.DayOfYear,
    exp.Week,
    exp.DateTrunc,
    exp.TimestampTrunc,
    exp.Extract,
    exp.DateDiff,
    exp.LastDay,
    exp.Monthname,
    exp.Dayname,
    exp.TimeToStr,
)
_STRING_FUNCTIONS = (
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Trim,
    exp.Left,
    exp.Right,
    exp.Contains,
    exp.StartsWith,
    exp.Replace,
    exp.Concat,
)
#: Nodes that only hold or pass on values, and cannot fail themselves.
_CARRIERS = (
    *QUERY_CLAUSES,
    exp.Window,
    exp.WindowSpec,
    exp.WithinGroup,
    exp.AggFunc,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.Try,
    exp.TryCast,
)


class _Refused(Exception):
    """An operation that has no safe form; ``str()`` is the whole message."""

    @classmethod
    def over_opaque(cls, what: str) -> _Refused:
        return cls(
            f"{what} is not allowed over aggregate, window or subquery values, as it could "
            f"fail on one group's value; allowed there are {ALLOWED}"
        )


def _has_opaque(node: exp.Expression) -> bool:
    return node.find(*OPAQUE) is not None


def _kind(node: exp.Expression) -> str:
    """``number``, ``text``, ``date``, ``boolean``, ``any`` (literals DuckDB converts when
    binding, so data-independently) or ``unknown``."""
    if isinstance(node, exp.Paren | exp.Try):
        return _kind(node.this)
    if isinstance(node, exp.Null) or _is_string(node):
        return "any"
    if isinstance(node, exp.Case | exp.If | exp.Coalesce | exp.Nullif | exp.Greatest | exp.Least):
        # A string literal branch is a run-time text value here, not a constant DuckDB
        # converts when binding.
        kinds = {"text" if _is_string(v) else _kind(v) for v in _operands(node)} - {"any"}
        return kinds.pop() if len(kinds) == 1 else ("any" if not kinds else "unknown")
    if isinstance(node, exp.Literal) or _is_double(node):
        return "number"
    window = node.this if isinstance(node, exp.Window) else node
    if type(window) in SAFE_AGGREGATES | RANKING_WINDOW_FUNCTIONS:
        return "number"
    kind = node.args["to"] if isinstance(node, exp.Cast) else node.type
    if kind is None:
        return "unknown"
    if kind.is_type(*exp.DataType.NUMERIC_TYPES):
        return "number"
    if kind.is_type(*exp.DataType.TEXT_TYPES):
        return "text"
    if kind.is_type(*exp.DataType.TEMPORAL_TYPES):
        return "date"
    if kind.is_type(exp.DataType.Type.BOOLEAN):
        return "boolean"
    return "unknown"


def _is_double(node: exp.Expression) -> bool:
    """Already DOUBLE: a TRY_CAST to DOUBLE, or arithmetic made safe here."""
    while isinstance(node, exp.Try | exp.Paren):
        node = node.this
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Neg):
        operands = list(node.iter_expressions())
        return any(_is_double(v) for v in operands) and all(
            _is_double(v) or _is_number_literal(v) for v in operands
        )
    return isinstance(node, exp.TryCast) and node.args["to"].is_type(_DOUBLE)


def _is_string(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _is_number_literal(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string


def _as_double(node: exp.Expression) -> exp.Expression:
    """``node`` converted to DOUBLE without failing, in the form QG-101 leaves unchanged."""
    if _is_double(node) or _is_number_literal(node):
        return node
    cast = exp.TryCast(this=node, to=exp.DataType.build("DOUBLE"))
    cast.type = exp.DataType.build("DOUBLE")
    return cast if _has_opaque(node) else exp.Try(this=cast)


def _operands(node: exp.Expression) -> list[exp.Expression]:
    """The values a comparison-like node brings to one type."""
    if isinstance(node, exp.Case):
        return [i.args["true"] for i in node.args.get("ifs") or []] + (
            [node.args["default"]] if node.args.get("default") else []
        )
    if isinstance(node, exp.If):
        return [v for v in (node.args.get("true"), node.args.get("false")) if v]
    if isinstance(node, exp.In) and node.args.get("query"):
        selects = node.args["query"].unnest().selects
        return [node.this, *(s.unalias() for s in selects[:1])]
    if isinstance(node, exp.Between):
        return [node.this, node.args["low"], node.args["high"]]
    return [v for v in node.iter_expressions()]


def _one_kind(node: exp.Expression) -> None:
    kinds = {_kind(v) for v in _operands(node)} - {"any"}
    if len(kinds) > 1 or "unknown" in kinds:
        raise _Refused.over_opaque(f"{node.key.upper()} over values of different or unknown kinds")


def _arithmetic(node: exp.Expression) -> None:
    if isinstance(node, exp.IntDiv | exp.Mod):
        # DuckDB's // on DOUBLE is plain division, so no DOUBLE form keeps the meaning.
        raise _Refused.over_opaque("// or % (use / and floor())")
    kinds = {_kind(v) for v in node.iter_expressions()}
    if "date" in kinds:
        if isinstance(node, exp.Sub) and kinds == {"date"}:
            return  # a number of days, cannot fail
        raise _Refused.over_opaque("date arithmetic")
    for key in ("this", "expression"):
        if node.args.get(key) is not None:
            node.set(key, _as_double(node.args[key]))


def _function(node: exp.Func) -> None:
    opaque = [
        (k, v) for k, v in node.args.items() if isinstance(v, exp.Expression) and _has_opaque(v)
    ]
    if isinstance(node, _NUMERIC_FUNCTIONS):
        for key, value in opaque:
            node.set(key, _as_double(value))
    elif isinstance(node, _DATE_FUNCTIONS):
        if any(_kind(v) != "date" for _, v in opaque):
            raise _Refused.over_opaque(f"{node.sql_name()} of a value that is not a date")
    elif isinstance(node, exp.Substring):
        if any(k != "this" for k, _ in opaque):
            raise _Refused.over_opaque("SUBSTRING positions computed from such values")
    elif not isinstance(node, _STRING_FUNCTIONS):
        raise _Refused.over_opaque(node.sql_name())


def _make_safe(node: exp.Expression) -> None:
    """Rewrite ``node`` in place (its operands include opaque values) or raise _Refused."""
    if isinstance(node, _ARITHMETIC):
        _arithmetic(node)
    elif isinstance(
        node,
        exp.Predicate | exp.Case | exp.If | exp.Coalesce | exp.Nullif | exp.Greatest | exp.Least,
    ):
        _one_kind(node)
    elif isinstance(node, exp.Func):
        _function(node)
    elif isinstance(node, exp.DPipe):
        return  # concatenation converts to text, which cannot fail
    else:
        raise _Refused.over_opaque(node.key.upper())


def _exact_sum_argument(node: exp.Expression, scope: Scope, ctx: GuardContext) -> bool:
    """Whether SUM/AVG of ``node`` cannot overflow: integers (they add up in HUGEINT) and
    DOUBLEs, traced through literals, CASE, COALESCE, TRY and columns passed through."""
    if isinstance(node, exp.Try | exp.Paren):
        return _exact_sum_argument(node.this, scope, ctx)
    if isinstance(node, exp.Literal):
        return not node.is_string and node.is_int and abs(int(node.name)) < 2**63
    if isinstance(node, exp.Null) or _is_double(node):
        return True
    if isinstance(node, exp.Case | exp.If | exp.Coalesce):
        return all(_exact_sum_argument(v, scope, ctx) for v in _operands(node))
    if isinstance(node, exp.Count):
        return True
    if not isinstance(node, exp.Column):
        return False
    source = scope.sources.get(node.table)
    if isinstance(source, exp.Table):
        kind = ctx.column_type(source.name, node.name)
        return kind is not None and kind.this in _EXACT_SUM_TYPES
    if isinstance(source, Scope) and isinstance(source.expression, exp.Select):
        for projection in source.expression.expressions:
            if projection.alias_or_name == node.name:
                return _exact_sum_argument(projection.unalias(), source, ctx)
    return False


def _safe_sums(scope: Scope, ctx: GuardContext) -> bool:
    """Sums and averages that could overflow computed in DOUBLE; whether any was."""
    changed = False
    for agg in scope.expression.find_all(exp.Sum, exp.Avg):
        if agg.find_ancestor(exp.Select, exp.SetOperation) is not scope.expression:
            continue
        holder = agg.this if isinstance(agg.this, exp.Distinct) else agg
        key = "expressions" if holder is not agg else "this"
        argument = holder.expressions[0] if holder is not agg else agg.this
        if not _exact_sum_argument(argument, scope, ctx):
            replacement = _as_double(argument)
            agg.type = exp.DataType.build("DOUBLE")
            changed = changed or replacement is not argument
            if key == "this":
                agg.set("this", replacement)
            else:
                holder.set("expressions", [replacement])
    return changed


def _window_argument(node: exp.Expression) -> None:
    """NTILE(0) and NTH_VALUE(x, 0) fail, and TRY cannot enclose a window function."""
    value = node.this if isinstance(node, exp.Ntile) else node.args.get("offset")
    if not (isinstance(value, exp.Literal) and value.is_int and int(value.name) > 0):
        raise _Refused(
            f"{node.sql_name()} needs a positive whole number written as a literal, as any "
            "other argument could make the query fail on one row's value"
        )


def _annotate(tree: exp.Expression, ctx: GuardContext) -> None:
    """Types for deciding kinds; where sqlglot cannot type a node its kind stays unknown."""
    with contextlib.suppress(SqlglotError):
        annotate_types(tree, schema=ctx.sqlglot_schema, dialect="duckdb")


def _unsafe(nodes: list[exp.Expression]) -> set[int]:
    """The nodes (``nodes`` children first) that compute with aggregate, window or
    subquery values, and so must be made safe; the carriers only pass them on. One pass,
    children first, instead of searching below every node."""
    opaque: set[int] = set()  # nodes holding such a value, themselves or below
    unsafe: set[int] = set()
    for node in nodes:
        over = any(id(v) in opaque for v in node.iter_expressions())
        if over or isinstance(node, OPAQUE):
            opaque.add(id(node))
        if over and not isinstance(node, (*_CARRIERS, exp.Ntile, exp.NthValue)):
            unsafe.add(id(node))
    return unsafe


def rewrite(expr: exp.Expression, ctx: GuardContext) -> tuple[exp.Expression, list[Finding]]:
    # Children before parents, so that a parent sees its operands' safe forms.
    nodes = list(reversed(list(expr.walk(bfs=False))))
    unsafe = _unsafe(nodes)
    tree, changed = expr, False
    if unsafe:
        # Whether making them safe changed anything is told by comparing with a copy; else
        # only a sum can change, which says so itself, and the tree is changed in place (the
        # guard never reads the tree it handed over again; copying it cost a tenth).
        tree = expr.copy()
        nodes = list(reversed(list(tree.walk(bfs=False))))
        unsafe = _unsafe(nodes)
        _annotate(tree, ctx)  # only making such a node safe reads types, and typing is costly
    try:
        for scope in scopes(tree):
            if isinstance(scope.expression, exp.Select):
                changed = _safe_sums(scope, ctx) or changed
        for node in nodes:
            if isinstance(node, exp.Ntile | exp.NthValue):
                _window_argument(node)
            elif id(node) in unsafe:  # what a child's safe form wraps stays opaque below it
                _make_safe(node)
    except _Refused as refused:
        return expr, [Finding(RULE, str(refused), USE_WITHIN_SCENARIO)]
    # Compared structurally, without generating either tree's SQL.
    unchanged = tree == expr if tree is not expr else not changed
    if unchanged:
        return tree, []
    return tree, [
        Finding(
            RULE,
            "arithmetic over aggregate, window or subquery values, and "
            "sums that could overflow, are computed in DOUBLE so that no "
            "group's value can make the query fail",
            USE_WITHIN_SCENARIO,
            action="rewrite",
        )
    ]
