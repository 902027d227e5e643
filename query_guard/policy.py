"""The guard's allowlists: SQL node types, functions and cast targets.

Anything not listed is refused (fail closed). Functions are listed by the
sqlglot expression class the DuckDB dialect parses them into; unknown
functions parse as ``exp.Anonymous`` and are never allowed.
"""

from __future__ import annotations

from sqlglot import exp

#: The nodes that shape a query (its clauses and names) rather than compute a value; the
#: rewrites protect what lies inside them, never the clauses themselves.
QUERY_CLAUSES: tuple[type[exp.Expression], ...] = (
    exp.Query,
    exp.Subquery,
    exp.With,
    exp.CTE,
    exp.From,
    exp.Join,
    exp.Where,
    exp.Group,
    exp.Having,
    exp.Order,
    exp.Ordered,
    exp.Limit,
    exp.Offset,
    exp.Distinct,
    exp.Alias,
)

#: Query structure and scalar operators a query may contain.
ALLOWED_NODES: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Select,
        exp.Union,
        exp.Except,
        exp.Intersect,
        exp.With,
        exp.CTE,
        exp.Subquery,
        exp.From,
        exp.Join,
        exp.Where,
        exp.Group,
        exp.Having,
        exp.Order,
        exp.Ordered,
        exp.Limit,
        exp.Offset,
        exp.Distinct,
        exp.Alias,
        exp.TableAlias,
        exp.Table,
        exp.Identifier,
        exp.Column,
        exp.Star,
        exp.Window,
        exp.WindowSpec,
        exp.WithinGroup,  # percentile_disc(q) WITHIN GROUP (ORDER BY x); QG-010 decides
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Paren,
        exp.Tuple,
        exp.Interval,
        exp.Var,
        exp.DataType,
        exp.DataTypeParam,
        exp.Cast,
        exp.TryCast,
        exp.Case,
        exp.If,
        exp.And,
        exp.Or,
        exp.Not,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.NullSafeEQ,
        exp.NullSafeNEQ,
        exp.Is,
        exp.In,
        exp.Between,
        exp.Like,
        exp.ILike,
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.IntDiv,
        exp.Mod,
        exp.Neg,
        exp.DPipe,
    }
)

#: Scalar functions: deterministic, no file, catalogue, setting or session access,
#: bounded output size.
SCALAR_FUNCTIONS: frozenset[type[exp.Func]] = frozenset(
    {
        exp.Year,
        exp.Month,
        exp.Quarter,
        exp.Day,
        exp.DayOfWeek,
        exp.DayOfWeekIso,
        exp.DayOfYear,
        exp.Week,
        exp.TimestampTrunc,
        exp.DateTrunc,
        exp.Extract,
        exp.DateDiff,
        exp.LastDay,
        exp.Monthname,
        exp.Dayname,
        exp.TimeToStr,
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
        exp.Greatest,
        exp.Least,
        exp.Coalesce,
        exp.Nullif,
        exp.Lower,
        exp.Upper,
        exp.Length,
        exp.Substring,
        exp.Trim,
        exp.Concat,
        exp.Left,
        exp.Right,
        exp.Contains,
        exp.StartsWith,
        exp.Replace,
        exp.Try,
        exp.CurrentDate,
    }
)

#: Aggregates that summarise a group without revealing one member's value.
SAFE_AGGREGATES: frozenset[type[exp.Func]] = frozenset(
    {
        exp.Count,
        exp.Sum,
        exp.Avg,
        exp.Stddev,
        exp.StddevPop,
        exp.StddevSamp,
        exp.Variance,
        exp.VariancePop,
        exp.Corr,
        exp.CovarPop,
        exp.CovarSamp,
    }
)

#: Ranking window functions (their value is a position, not a data value).
RANKING_WINDOW_FUNCTIONS: frozenset[type[exp.Func]] = frozenset(
    {
        exp.RowNumber,
        exp.Rank,
        exp.DenseRank,
        exp.Ntile,
    }
)

#: Aggregates that return one member's value (order statistics, picks): in
#: aggregate mode allowed only inside a per-entity pre-aggregation.
ORDER_STATISTICS: frozenset[type[exp.Func]] = frozenset(
    {
        exp.Min,
        exp.Max,
        exp.Median,
        exp.PercentileCont,
        exp.PercentileDisc,
        exp.Quantile,
        exp.ApproxQuantile,
        exp.Mode,
        exp.ArgMax,
        exp.ArgMin,
        exp.AnyValue,
        exp.First,
        exp.Last,
        exp.FirstValue,
        exp.LastValue,
        exp.NthValue,
        exp.LogicalOr,
        exp.LogicalAnd,
        exp.BitwiseOrAgg,
        exp.BitwiseAndAgg,
        exp.Lag,
        exp.Lead,
    }
)

#: Aggregates that collect many values into one cell: they would bypass the row cap.
COLLECTING_AGGREGATES: frozenset[type[exp.Func]] = frozenset(
    {
        exp.ArrayAgg,
        exp.GroupConcat,
        exp.ArrayUniqueAgg,
    }
)

#: Simple types a value may be cast to (no structs, lists or maps).
CAST_TARGETS: frozenset[exp.DataType.Type] = frozenset(
    {
        exp.DataType.Type.TINYINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.DECIMAL,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.TEXT,
        exp.DataType.Type.DATE,
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.BOOLEAN,
    }
)


def function_name(func: exp.Func) -> str:
    """The SQL name of a function call, for messages."""
    if isinstance(func, exp.Anonymous):
        return str(func.this).lower()
    return func.sql_name().lower()


#: The allowed functions by their DuckDB names, for messages.
ALLOWED_FUNCTIONS_TEXT = (
    "count, sum, avg, stddev, variance, corr, covar_pop, covar_samp; year, month, quarter, "
    "day, dayofweek, isodow, dayofyear, week, date_trunc, extract, datediff, last_day, "
    "monthname, dayname, strftime; round, floor, ceil, abs, sign, ln, log, sqrt, exp, power, "
    "greatest, least, coalesce, nullif; lower, upper, length, substr, trim, concat, left, right, "
    "contains, starts_with, replace; try, current_date; window functions row_number, rank, "
    "dense_rank, ntile"
)
