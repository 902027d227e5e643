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

The text is drawn in the first of :data:`FONTS` that has every character of it: matplotlib's
own DejaVu Sans for Latin text (the same drawing on every host), a CJK font for Chinese.
A figure whose text no installed font can draw is refused (rule ``export-chart-font``)
rather than drawn with empty boxes; the operator installs Debian's ``fonts-noto-cjk``.
"""

from __future__ import annotations

import csv
import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from export_review.forms import CLAUSE
from sandbox.errors import PolicyViolation, ValidationFailed

#: The files a figure leaves as, besides its table.
CHART_FILE, PNG_FILE, SVG_FILE = "chart.json", "figure.png", "figure.svg"
#: At most this many series (or y columns) in one chart: more cannot be told apart.
MAX_SERIES = 12
#: At most this many rows in a figure's table: the reviewer checks each of them in the
#: table, and a scatter of more points comes close to a plot of records.
MAX_ROWS = 1000
#: At most this many x categories in a bar or line chart: more cannot be labelled legibly.
MAX_CATEGORIES = 60
#: The fonts tried, in order, for a figure's text: the first that has every character
#: draws it. DejaVu Sans ships with matplotlib; the CJK fonts are the host's (Debian:
#: fonts-noto-cjk provides Noto Sans CJK, fonts-wqy-zenhei WenQuanYi Zen Hei).
FONTS = ("DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC",
         "WenQuanYi Zen Hei")  # fmt: skip
#: Characters of the axes' tick labels, drawn in the same font.
_TICK_CHARACTERS = "0123456789.-+e%"
#: Unicode blocks of Chinese, Japanese and Korean text (ideographs, their punctuation,
#: kana, hangul, full-width forms).
_CJK_BLOCKS = ((0x2E80, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F),
               (0xFF00, 0xFFEF), (0x20000, 0x3FFFF))  # fmt: skip
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


def _refuse(message: str, rule: str = _RULE) -> PolicyViolation:
    return PolicyViolation(rule, f"{CLAUSE} (figure)", message)


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
    """A cell as a number; an empty one (e.g. suppressed) is NaN and not drawn."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):  # 'nan' or 'inf' typed into a table is not a statistic
        raise ValueError(value)
    return number


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


def _check_size(spec: ChartSpec, table: ChartTable) -> None:
    size = "export-chart-size"
    if not table.rows:
        raise _refuse("the figure's table has no rows", size)
    if len(table.rows) > MAX_ROWS:
        raise _refuse(
            f"the figure's table has {len(table.rows)} rows; a figure is drawn from at most "
            f"{MAX_ROWS} (aggregate more coarsely)",
            size,
        )
    categories = len(_categories(spec, table)) if spec.kind in ("bar", "line") else 0
    if categories > MAX_CATEGORIES:
        raise _refuse(
            f"x column {spec.x!r} has {categories} values; a {spec.kind} chart labels at most "
            f"{MAX_CATEGORIES} (group them, or draw a histogram)",
            size,
        )
    series = len(_lines(spec, table)) if spec.series else 0
    if series > MAX_SERIES:
        raise _refuse(f"series {spec.series!r} has {series} values; at most {MAX_SERIES}", size)


def check_chart(spec: ChartSpec, table: ChartTable) -> None:
    """Raise unless ``spec`` can be drawn from ``table`` exactly as it says, legibly, in a
    font that has every character of its text."""
    check_columns(spec, table.columns)
    if spec.kind == "histogram" and (len(spec.y) != 1 or spec.series):
        raise _refuse("a histogram has one y column (the bins' heights) and no series")
    if spec.series and len(spec.y) != 1:
        raise _refuse("a chart with a series column has one y column")
    _check_size(spec, table)
    for column in spec.y:
        _numbers(table, column)
    if spec.kind in ("scatter", "histogram"):
        _numbers(table, spec.x)
    if spec.kind == "histogram" and len(set(_numbers(table, spec.x))) != len(table.rows):
        raise _refuse(f"a histogram's x column ({spec.x!r}) holds each bin's lower edge once")
    chart_fonts(spec, table)


def _categories(spec: ChartSpec, table: ChartTable) -> list[str]:
    """The x values of a bar or line chart, once each, in the table's order."""
    i = table.columns.index(spec.x)
    return list(dict.fromkeys(str(row[i]) for row in table.rows))


def _texts(spec: ChartSpec, table: ChartTable) -> dict[str, str]:
    """Every text the drawing shows, by where it comes from (named in a refusal)."""
    texts = {
        "title": spec.title,
        "x_label": spec.x_label or spec.x,
        "y_label": spec.y_label or ", ".join(spec.y),
        "ticks": _TICK_CHARACTERS,
    }
    if _has_legend(spec, table):
        texts["legend"] = " ".join([spec.series or "", *(n for n, _ in _lines(spec, table))])
    if spec.kind in ("bar", "line"):
        texts[f"values of x column {spec.x!r}"] = "".join(_categories(spec, table))
    return texts


@functools.cache
def _font_characters(name: str) -> frozenset[int] | None:
    """The characters the installed font ``name`` has, or None when it is not installed."""
    try:
        path = font_manager.findfont(font_manager.FontProperties(family=name),
                                     fallback_to_default=False)  # fmt: skip
    except ValueError:
        return None
    return frozenset(font_manager.get_font(path).get_charmap())


def _is_cjk(ch: str) -> bool:
    return any(lo <= ord(ch) <= hi for lo, hi in _CJK_BLOCKS)


def chart_fonts(spec: ChartSpec, table: ChartTable, fonts: Sequence[str] = FONTS) -> list[str]:
    """The font the drawing's text is drawn in: the first of ``fonts`` installed with every
    character of it (else the installed ones in order, each character drawn by the first
    that has it); a refusal (rule ``export-chart-font``) naming the texts no installed font
    can draw."""
    texts = _texts(spec, table)
    needed = {ord(ch) for text in texts.values() for ch in text if not ch.isspace()}
    installed = [(name, chars) for name in fonts if (chars := _font_characters(name))]
    for name, chars in installed:
        if needed <= chars:
            return [name]
    drawable = frozenset().union(*(chars for _, chars in installed))
    missing = {where: [ch for ch in text if not ch.isspace() and ord(ch) not in drawable]
               for where, text in texts.items()}  # fmt: skip
    if not any(missing.values()):
        return [name for name, _ in installed]
    cjk = any(_is_cjk(ch) for chars in missing.values() for ch in chars)
    remedy = (
        "Chinese, Japanese or Korean text needs a CJK font on the platform's host: the "
        "operator installs one (Debian package fonts-noto-cjk)"
        if cjk
        else "write them in Latin or Chinese characters"
    )
    raise _refuse(
        f"no font installed on the platform draws the characters of the chart's "
        f"{', '.join(where for where, chars in missing.items() if chars)}, and the platform "
        f"does not draw empty boxes in their place; {remedy}",
        "export-chart-font",
    )


def _lines(spec: ChartSpec, table: ChartTable) -> list[tuple[str, list[int]]]:
    """(label, row numbers) of each series, or one entry per y column."""
    if not spec.series:
        return [(y, list(range(len(table.rows)))) for y in spec.y]
    i = table.columns.index(spec.series)
    groups: dict[str, list[int]] = {}
    for n, row in enumerate(table.rows):
        groups.setdefault(str(row[i]), []).append(n)
    return list(groups.items())


def _has_legend(spec: ChartSpec, table: ChartTable) -> bool:
    return spec.kind != "histogram" and len(_lines(spec, table)) > 1


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
        categories = _categories(spec, table)
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
    if _has_legend(spec, table):
        ax.legend(title=spec.series or None)


def render_chart(spec: ChartSpec, table: ChartTable, folder: Path) -> list[Path]:
    """Draw ``spec`` from ``table`` into ``folder`` as PNG and SVG; return both paths.

    Only the Agg renderer and an unshared ``Figure`` are used (no pyplot state), so
    concurrent requests do not draw into each other's figures.
    """
    check_chart(spec, table)
    folder.mkdir(parents=True, exist_ok=True)
    fonts = chart_fonts(spec, table)
    # The fonts as the family list itself: matplotlib then takes each glyph from the first
    # font that has it (a "sans-serif" list would draw everything in its first font alone).
    style = {"font.family": fonts, "svg.fonttype": "path",
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
    with path.open(encoding="utf-8-sig", newline="") as f:  # with or without a BOM
        rows = list(csv.reader(f))
    return table_from_rows(rows[0] if rows else [], rows[1:])


def chart_json(spec: ChartSpec) -> str:
    """The specification as it leaves in the bundle: every field, keys sorted."""
    return json.dumps(spec.model_dump(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
