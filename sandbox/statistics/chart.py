"""Horizontal bar charts as plain geometry, drawn as inline SVG by the template (no script)."""

from __future__ import annotations

from dataclasses import dataclass

#: Pixel sizes of one chart: label column, longest bar, row height.
LABEL_WIDTH = 160
BAR_WIDTH = 300
ROW_HEIGHT = 24


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: int


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    label_width: int = LABEL_WIDTH


def bar_chart(counts: dict[str, int]) -> Chart:
    """One bar per key, the longest bar for the largest count; a zero gets no bar.

    >>> [b.width for b in bar_chart({"a": 4, "b": 1, "c": 0}).bars]
    [300, 75, 0]
    """
    top = max(counts.values(), default=0)
    bars = [
        Bar(label, value, i * ROW_HEIGHT, round(BAR_WIDTH * value / top) if top else 0)
        for i, (label, value) in enumerate(counts.items())
    ]
    return Chart(bars, LABEL_WIDTH + BAR_WIDTH + 60, max(len(bars), 1) * ROW_HEIGHT)
