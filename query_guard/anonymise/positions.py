"""What may stand in each position of an aggregate-mode query: one table, default deny.

Each entry lists the SQL node types allowed in that position, why, and what
to write instead when something else is found; :mod:`.plan` walks a query
against it. Anything not listed is refused. Positions *after* aggregation
(the result columns around aggregates, HAVING, ORDER BY, windows over
aggregates, blocks over aggregated blocks) only ever see anonymised values,
so there the general guard rules apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp


@dataclass(frozen=True)
class Position:
    allowed: frozenset[type[exp.Expression]]
    why: str
    instead: str


#: Date parts and truncations: a coarsening of a date, never one person's date.
DATE_PARTS = frozenset(
    {
        exp.Year,
        exp.Quarter,
        exp.Month,
        exp.Week,
        exp.Day,
        exp.DayOfWeek,
        exp.DayOfWeekIso,
        exp.DayOfYear,
        exp.DateTrunc,
        exp.TimestampTrunc,
    }
)

POSITIONS: dict[str, Position] = {
    "aggregate": Position(
        frozenset(
            {
                exp.Count,
                exp.Sum,
                exp.Avg,
                exp.Stddev,
                exp.StddevSamp,
                exp.StddevPop,
                exp.Variance,
                exp.VariancePop,
                exp.Median,
                exp.PercentileCont,
            }
        ),
        "these summarise many entities' contributions and are computed with contributor "
        "counts, flattening and noise (medians and continuous percentiles from a window of "
        "entities around the rank, perturbed), whereas picks and discrete order statistics (min, "
        "max, any_value, arg_max, first, list, string_agg, mode, percentile_disc) return "
        "one entity's value",
        "use count, sum, avg, stddev, variance, median or percentile_cont",
    ),
    "per-entity aggregate": Position(
        frozenset(
            {
                exp.Count,
                exp.Sum,
                exp.Avg,
                exp.Min,
                exp.Max,
                exp.Median,
                exp.Stddev,
                exp.StddevSamp,
                exp.Variance,
            }
        ),
        "a WITH query grouped by the entity summarises each entity's own rows, which the "
        "block over it then aggregates with contributor counts, flattening and noise",
        "use count, sum, avg, min, max, median, stddev or variance of one column",
    ),
    "aggregate argument": Position(
        frozenset(
            {exp.Column, exp.Literal, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg, exp.Paren}
        ),
        "an argument linear in one column (a·x + b) cannot single out or amplify one "
        "entity's value, whereas conditions (CASE, FILTER, IF, NULLIF, boolean casts, greatest, "
        "coalesce, sign, lambdas), powers, logarithms and exponentials can",
        "move the condition to WHERE or GROUP BY and aggregate the column itself, "
        "e.g. sum(x) … WHERE c = 'v', or count(*) … GROUP BY c",
    ),
    "condition": Position(
        frozenset(
            {
                exp.EQ,
                exp.Between,
                exp.GT,
                exp.GTE,
                exp.LT,
                exp.LTE,
                exp.Is,
            }
        ),
        "conditions that keep a whole class of rows (one value, a coarse range, missing) "
        "get a noise layer of their own, whereas IN lists, negations, OR, <> and expressions can "
        "make two queries differ by exactly one person",
        "write conditions as column = value, column BETWEEN a AND b or column >= a with "
        "round bounds, or column IS NULL, joined by AND; for several values GROUP BY the "
        "column instead",
    ),
    "bucket": Position(
        frozenset(
            {
                exp.Column,
                exp.Identifier,
                exp.Literal,
                exp.Var,
                exp.Paren,
                exp.Floor,
                exp.Round,
                exp.Mul,
                exp.Div,
                exp.Lower,
                exp.Upper,
                exp.Left,
                exp.Substring,
                exp.Cast,
                exp.TryCast,
                exp.DataType,
                *DATE_PARTS,
            }
        ),
        "a group key or a condition's column is one column, or a coarsening of it (date "
        "parts, floor(x / w) * w with a round width, round, a prefix)",
        "group by the column or a bin of it, e.g. floor(age / 10) * 10 or year(day)",
    ),
    "window over rows": Position(
        frozenset(),
        "a window over rows carries other entities' values into each row (ranks, lags)",
        "aggregate first; windows over aggregates (e.g. sum(count(*)) OVER ()) are allowed",
    ),
    "relation": Position(
        frozenset({exp.Table}),
        "an anonymising aggregate reads the datasets directly, so each row's entity is known",
        "aggregate the datasets (joined on declared keys) in one block; WITH queries and "
        "subqueries may aggregate and be aggregated again",
    ),
}
