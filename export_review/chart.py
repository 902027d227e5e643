"""Figures drawn by the platform from checked data, never the researcher's image bytes.

A figure leaves as a chart specification and the table it is drawn from (a checked
table or a DP release). The specification is small and declarative::

    {"kind": "bar", "x": "district", "y": ["n"], "series": null,
     "title": "Visits per district", "x_label": "District", "y_label": "Visits"}

``kind`` is ``bar`` (one bar per row and y column, grouped by ``series`` when given),
``line`` (one line per y column or per ``series`` value, in the table's row order),
``scatter`` (numeric x against each y) or ``histogram`` (x holds the lower edges of
numeric bins, one y holds their heights; bars touch). ``x``, ``y`` and ``series`` are
columns of the table; y values are numbers (an empty cell, e.g. a suppressed one, is
not drawn). The platform validates the specification against the table and draws it
with matplotlib's Agg renderer into PNG and SVG (text as paths, no date), so a reviewer
checks numbers in a table and the pixels can hold nothing else (THREAT_MODEL boundary 3).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from export_review.forms import CLAUSE
from sandbox.errors import PolicyViolation, ValidationFailed

#: The files a figure leaves as, besides its table.
CHART_FILE, PNG_FILE, SVG_FILE = "chart.json", "figure.png", "figure.svg"
#: At most this many series (or y columns) in one chart: more cannot be told apart.
MAX_SERIES = 12
#: CJK fonts tried first so Chinese titles and labels draw; DejaVu Sans is matplotlib's own.
FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "Source Han Sans SC",
         "DejaVu Sans"]  # fmt: skip
_RULE = "export-chart"


class ChartSpec(BaseModel):
    """What to draw; unknown keys are refused, like every contract of the platform."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["bar", "line", "scatter", "histogram"]
    x: str = Field(min_length=1, max_length=64)
    y: list[str] = Field(min_length=1, max_length=MAX_SERIES)
    series: str | None = Field(default=None, min_length=1, max_length=64)
    title: str = Field(default="", max_length=200)
    x_label: str = Field(default="", max_length=100)
    y_label: str = Field(default="", max_length=100)

    @field_validator("y", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("title", "x_label", "y_label")
    @classmethod
    def _plain(cls, v: str) -> str:
        if any(ord(ch) < 32 for ch in v):
            raise ValueError("must be one line of plain text")
        return v


@dataclass(frozen=True)
class ChartTable:
    """The table a figure is drawn from: a header and rows (CSV text or a DP release)."""

    columns: list[str]
    rows: list[list[Any]]


def _refuse(message: str) -> PolicyViolation:
    return PolicyViolation(_RULE, f"{CLAUSE} (figure)", message)


def parse_chart(raw: object) -> ChartSpec:
    """The specification, or a refusal (bad input, 422) naming the field that is wrong."""
    try:
        return ChartSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'chart'}: {e['msg']}" for e in exc.errors()
        )
        raise ValidationFailed(
            f"the chart specification is not valid ({problems})",
            rule=_RULE,
            article=f"{CLAUSE} (figure)",
        ) from None


def _number(value: Any) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


def _numbers(table: ChartTable, column: str) -> list[float]:
    i = table.columns.index(column)
    try:
        return [_number(row[i]) for row in table.rows]
    except (TypeError, ValueError):
        raise _refuse(f"column {column!r} holds values that are not numbers") from None


def check_columns(spec: ChartSpec, columns: Sequence[str]) -> None:
    """Raise unless the columns ``spec`` names are distinct columns of the table (checked on
    a DP release's planned columns before anything is charged)."""
    named = [spec.x, *spec.y, *([spec.series] if spec.series else [])]
    missing = [c for c in named if c not in columns]
    if missing:
        raise _refuse(
            f"column(s) {', '.join(missing)} are not in the figure's table; its columns "
            f"are: {', '.join(columns)}"
        )
    if len(set(named)) != len(named):
        raise _refuse("x, y and series must be different columns")


def check_chart(spec: ChartSpec, table: ChartTable) -> None:
    """Raise unless ``spec`` can be drawn from ``table`` exactly as it says."""
    check_columns(spec, table.columns)
    if not table.rows:
        raise _refuse("the figure's table has no rows")
    for column in spec.y:
        _numbers(table, column)
    if spec.kind in ("scatter", "histogram"):
        _numbers(table, spec.x)
    if spec.kind == "histogram" and (len(spec.y) != 1 or spec.series):
        raise _refuse("a histogram has one y column (the bins' heights) and no series")
    if spec.series:
        if len(spec.y) != 1:
            raise _refuse("a chart with a series column has one y column")
        groups = {str(r[table.columns.index(spec.series)]) for r in table.rows}
        if len(groups) > MAX_SERIES:
            raise _refuse(f"series {spec.series!r} has {len(groups)} values; at most {MAX_SERIES}")


def _lines(spec: ChartSpec, table: ChartTable) -> list[tuple[str, list[int]]]:
    """(label, row numbers) of each series, or one entry per y column."""
    if not spec.series:
        return [(y, list(range(len(table.rows)))) for y in spec.y]
    i = table.columns.index(spec.series)
    groups: dict[str, list[int]] = {}
    for n, row in enumerate(table.rows):
        groups.setdefault(str(row[i]), []).append(n)
    return list(groups.items())


def _draw(spec: ChartSpec, table: ChartTable, fig: Figure) -> None:
    ax = fig.add_subplot()
    xs = [row[table.columns.index(spec.x)] for row in table.rows]
    lines = _lines(spec, table)
    y_of = {y: _numbers(table, y) for y in spec.y}

    def values(label: str, rows: list[int]) -> list[float]:
        return [y_of[spec.y[0] if spec.series else label][n] for n in rows]

    if spec.kind == "histogram":
        edges, heights = _numbers(table, spec.x), y_of[spec.y[0]]
        pairs = sorted(zip(edges, heights, strict=True))
        gaps = [b[0] - a[0] for a, b in zip(pairs, pairs[1:], strict=False)]
        widths = [*gaps, gaps[-1] if gaps else 1.0]
        ax.bar([p[0] for p in pairs], [p[1] for p in pairs], width=widths, align="edge",
               edgecolor="white")  # fmt: skip
    elif spec.kind == "scatter":
        x_numbers = _numbers(table, spec.x)
        for label, rows in lines:
            ax.scatter([x_numbers[n] for n in rows], values(label, rows), label=label)
    else:
        categories = list(dict.fromkeys(str(x) for x in xs))
        position = {c: p for p, c in enumerate(categories)}
        width = 0.8 / len(lines)
        for k, (label, rows) in enumerate(lines):
            at = [position[str(xs[n])] for n in rows]
            if spec.kind == "bar":
                ax.bar([p - 0.4 + width * (k + 0.5) for p in at], values(label, rows),
                       width=width, label=label)  # fmt: skip
            else:
                ax.plot(at, values(label, rows), marker="o", label=label)
        ax.set_xticks(range(len(categories)), categories, rotation=45 if len(categories) > 6 else 0)
    ax.set_title(spec.title)
    ax.set_xlabel(spec.x_label or spec.x)
    ax.set_ylabel(spec.y_label or ", ".join(spec.y))
    if len(lines) > 1 and spec.kind != "histogram":
        ax.legend(title=spec.series or None)


def render_chart(spec: ChartSpec, table: ChartTable, folder: Path) -> list[Path]:
    """Draw ``spec`` from ``table`` into ``folder`` as PNG and SVG; return both paths.

    Only the Agg renderer and an unshared ``Figure`` are used (no pyplot state), so
    concurrent requests do not draw into each other's figures.
    """
    check_chart(spec, table)
    folder.mkdir(parents=True, exist_ok=True)
    style = {"font.family": "sans-serif", "font.sans-serif": FONTS, "svg.fonttype": "path",
             "svg.hashsalt": "sandbox-figure", "axes.unicode_minus": False}  # fmt: skip
    with matplotlib.rc_context(style):
        fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
        _draw(spec, table, fig)
        png, svg = folder / PNG_FILE, folder / SVG_FILE
        fig.savefig(png, format="png", metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return [png, svg]


def table_from_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> ChartTable:
    return ChartTable([str(c) for c in columns], [list(r) for r in rows])


def read_csv_table(path: Path) -> ChartTable:
    """A CSV file (header row first, as the file gate checks) as a chart's table."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return table_from_rows(rows[0] if rows else [], rows[1:])


def chart_json(spec: ChartSpec) -> str:
    """The specification as it leaves in the bundle: every field, keys sorted."""
    return json.dumps(spec.model_dump(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
