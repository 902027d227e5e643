"""The platform's drawing of a figure (export_review.chart): every kind drawn from a real
table (queried from the agreement's DuckDB database, handed in as CSV) into a valid PNG and
an SVG of paths only, the same bytes every time; every bad specification refused with its
rule; Chinese text drawn in a CJK font, or refused when no installed font has it."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib import font_manager

from export_review.chart import (
    MAX_CATEGORIES,
    MAX_ROWS,
    MAX_SERIES,
    PNG_FILE,
    SVG_FILE,
    ChartTable,
    chart_fonts,
    check_chart,
    parse_chart,
    read_csv_table,
    render_chart,
    table_from_rows,
)
from sandbox.errors import PolicyViolation, SandboxError, ValidationFailed
from sandbox.refusal_text import say
from tests.export_review.conftest import World

#: The queries behind each kind's table, on the agreement's database.
TABLES = {
    "bar": "SELECT district, count(*) AS n, round(avg(cost), 1) AS mean_cost "
    "FROM outpatient_visits GROUP BY district ORDER BY district",
    "line": "SELECT strftime(visit_date, '%m') AS month, hospital, count(*) AS n "
    "FROM outpatient_visits WHERE hospital <> 'H-RARE' GROUP BY ALL ORDER BY month, hospital",
    "scatter": "SELECT age, round(avg(cost), 1) AS mean_cost, hospital FROM outpatient_visits "
    "WHERE hospital <> 'H-RARE' GROUP BY ALL ORDER BY age, hospital",
    "histogram": "SELECT floor(cost / 100) * 100 AS lower, count(*) AS n "
    "FROM outpatient_visits GROUP BY lower ORDER BY lower",
}
SPECS: dict[str, dict[str, Any]] = {
    "bar": {"kind": "bar", "x": "district", "y": ["n", "mean_cost"], "title": "门诊量与平均费用",
            "x_label": "区", "y_label": "人次 / 元"},
    "line": {"kind": "line", "x": "month", "y": "n", "series": "hospital",
             "title": "Visits per month", "y_label": "visits"},
    "scatter": {"kind": "scatter", "x": "age", "y": "mean_cost", "series": "hospital"},
    "histogram": {"kind": "histogram", "x": "lower", "y": "n", "title": "Cost (yuan)"},
}  # fmt: skip
SVG_NS = "{http://www.w3.org/2000/svg}"


def _cjk_installed() -> bool:
    try:
        chart_fonts(parse_chart({"kind": "bar", "x": "x", "y": "y", "title": "门诊"}),
                    table_from_rows(["x", "y"], [["a", 1]]))  # fmt: skip
    except PolicyViolation:
        return False
    return True


needs_cjk_font = pytest.mark.skipif(
    not _cjk_installed(), reason="no CJK font installed (Debian: fonts-noto-cjk, as in CI)"
)


def _csv_table(world: World, kind: str, folder: Path) -> ChartTable:
    """The kind's table queried from the agreement's database and handed in as a CSV file."""
    with world.connect() as con:
        frame: pd.DataFrame = con.execute(TABLES[kind]).df()
    path = folder / f"{kind}.csv"
    frame.to_csv(path, index=False)
    return read_csv_table(path)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"  # complete, nothing after it
    return width, height


def _svg_paths_only(text: str) -> ET.Element:
    """The SVG parsed; it holds vector paths only: no raster, script, text or link out."""
    root = ET.fromstring(text)
    assert root.tag == f"{SVG_NS}svg"
    assert (root.get("width"), root.get("height")) == ("504pt", "288pt")
    tags = {el.tag.removeprefix(SVG_NS) for el in root.iter()}
    assert not tags & {"image", "script", "foreignObject", "text", "a", "iframe", "object"}
    assert "path" in tags
    for el in root.iter():
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), name  # no event handlers
            if name.endswith("href"):
                assert value.startswith("#"), value  # only references inside the file
    assert "data:" not in text and "base64" not in text
    return root


@pytest.mark.parametrize("kind", list(SPECS))
def test_every_kind_is_drawn_from_a_real_table_into_png_and_svg(
    world: World, kind: str, tmp_path: Path
) -> None:
    if kind == "bar" and not _cjk_installed():
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk, as in CI)")
    table = _csv_table(world, kind, tmp_path)
    assert len(table.rows) >= 5
    spec = parse_chart(SPECS[kind])
    png, svg = render_chart(spec, table, tmp_path / "figure")
    assert (png.name, svg.name) == (PNG_FILE, SVG_FILE)
    assert _png_size(png.read_bytes()) == (700, 400)
    _svg_paths_only(svg.read_text(encoding="utf-8"))
    again = render_chart(spec, table, tmp_path / "again")
    assert [p.read_bytes() for p in again] == [png.read_bytes(), svg.read_bytes()]


def test_the_drawing_is_of_the_table_it_is_given(world: World, tmp_path: Path) -> None:
    """Same specification, one number changed: a different drawing (the pixels are the data)."""
    table = _csv_table(world, "histogram", tmp_path)
    spec = parse_chart(SPECS["histogram"])
    first = render_chart(spec, table, tmp_path / "first")
    changed = ChartTable(table.columns, [list(r) for r in table.rows])
    changed.rows[0][1] = str(int(changed.rows[0][1]) * 3)
    second = render_chart(spec, changed, tmp_path / "second")
    assert first[0].read_bytes() != second[0].read_bytes()
    assert first[1].read_bytes() != second[1].read_bytes()


def test_empty_cells_are_not_drawn_and_a_dp_release_table_draws(tmp_path: Path) -> None:
    """A suppressed (empty) cell leaves a gap; numbers from a DP release (not text) draw."""
    spec = parse_chart({"kind": "line", "x": "q", "y": "n"})
    table = table_from_rows(["q", "n"], [["Q1", 12.5], ["Q2", None], ["Q3", 9.0], ["Q4", 14]])
    png, svg = render_chart(spec, table, tmp_path)
    assert _png_size(png.read_bytes()) == (700, 400)
    _svg_paths_only(svg.read_text(encoding="utf-8"))


def _refusal(raw: dict[str, Any], table: ChartTable) -> SandboxError:
    with pytest.raises(SandboxError) as caught:
        check_chart(parse_chart(raw), table)
    return caught.value


TABLE = table_from_rows(
    ["district", "n", "cost", "label"],
    [["A", 12, 100.5, "x"], ["B", 15, 90.0, "y"], ["C", 11, 80.25, "z"]],
)


@pytest.mark.parametrize(
    ("raw", "wrong"),
    [
        ({"kind": "bar", "x": "district", "y": "n", "colour": "red"}, "colour: Extra inputs"),
        ({"kind": "pie", "x": "district", "y": "n"}, "kind: Input should be 'bar', 'line'"),
        ({"kind": "bar", "y": "n"}, "x: Field required"),
        ({"kind": "bar", "x": "district", "y": []}, "y: List should have at least 1 item"),
        ({"kind": "bar", "x": "district", "y": [f"c{i}" for i in range(MAX_SERIES + 1)]},
         f"y: List should have at most {MAX_SERIES} items"),
        ({"kind": "bar", "x": "district", "y": "n", "title": "a\nb"},
         "title: Value error, must be one line of plain text"),
        ({"kind": "bar", "x": "district", "y": "n", "title": "t" * 201},
         "title: String should have at most 200 characters"),
        ("bar", "chart: Input should be a valid dictionary"),
    ],
)  # fmt: skip
def test_a_malformed_specification_is_refused_naming_the_field(raw: Any, wrong: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_chart(raw)
    assert caught.value.rule == "export-chart"
    assert caught.value.article == "agreement clause outputs (figure)"
    assert wrong in caught.value.message, caught.value.message


@pytest.mark.parametrize(
    ("raw", "rows", "rule", "says"),
    [
        ({"kind": "bar", "x": "region", "y": "n"}, TABLE.rows, "export-chart",
         "column(s) region are not in the figure's table; its columns are: district, n"),
        ({"kind": "bar", "x": "district", "y": ["n", "visits"]}, TABLE.rows, "export-chart",
         "column(s) visits are not"),
        ({"kind": "bar", "x": "n", "y": "n"}, TABLE.rows, "export-chart",
         "x, y and series must be different columns"),
        ({"kind": "line", "x": "district", "y": "label"}, TABLE.rows, "export-chart",
         "column 'label' holds values that are not numbers"),
        ({"kind": "scatter", "x": "n", "y": "label"}, TABLE.rows, "export-chart",
         "column 'label' holds values that are not numbers"),
        ({"kind": "scatter", "x": "district", "y": "n"}, TABLE.rows, "export-chart",
         "column 'district' holds values that are not numbers"),
        ({"kind": "histogram", "x": "district", "y": "n"}, TABLE.rows, "export-chart",
         "column 'district' holds values that are not numbers"),
        ({"kind": "line", "x": "district", "y": "n"}, [["A", "inf", 1, "x"]], "export-chart",
         "column 'n' holds values that are not numbers"),
        ({"kind": "bar", "x": "district", "y": "n"}, [["A", True, 1, "x"]], "export-chart",
         "column 'n' holds values that are not numbers"),
        ({"kind": "histogram", "x": "n", "y": ["cost", "label"]}, TABLE.rows, "export-chart",
         "a histogram has one y column (the bins' heights) and no series"),
        ({"kind": "histogram", "x": "n", "y": "cost"}, [*TABLE.rows, ["D", 12, 1, "w"]],
         "export-chart", "holds each bin's lower edge once"),
        ({"kind": "bar", "x": "district", "y": ["n", "cost"], "series": "label"}, TABLE.rows,
         "export-chart", "a chart with a series column has one y column"),
        ({"kind": "bar", "x": "district", "y": "n"}, [], "export-chart-size",
         "the figure's table has no rows"),
        ({"kind": "scatter", "x": "n", "y": "cost"},
         [["A", i, i, "x"] for i in range(MAX_ROWS + 1)], "export-chart-size",
         f"{MAX_ROWS + 1} rows; a figure is drawn from at most {MAX_ROWS}"),
        ({"kind": "bar", "x": "district", "y": "n"},
         [[f"D{i}", i, i, "x"] for i in range(MAX_CATEGORIES + 1)], "export-chart-size",
         f"has {MAX_CATEGORIES + 1} values; a bar chart labels at most {MAX_CATEGORIES}"),
        ({"kind": "line", "x": "district", "y": "n", "series": "label"},
         [["A", i, i, f"s{i}"] for i in range(MAX_SERIES + 1)], "export-chart-size",
         f"series 'label' has {MAX_SERIES + 1} values; at most {MAX_SERIES}"),
    ],
)  # fmt: skip
def test_a_specification_the_table_cannot_draw_is_refused_with_its_rule(
    raw: dict[str, Any], rows: list[list[Any]], rule: str, says: str, tmp_path: Path
) -> None:
    table = table_from_rows(TABLE.columns, rows)
    refusal = _refusal(raw, table)
    assert isinstance(refusal, PolicyViolation)
    assert (refusal.rule, refusal.article) == (rule, "agreement clause outputs (figure)")
    assert says in refusal.message, refusal.message
    with pytest.raises(PolicyViolation):  # drawing checks first: nothing is written
        render_chart(parse_chart(raw), table, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_at_the_limits_the_chart_draws(tmp_path: Path) -> None:
    many = table_from_rows(
        ["d", "n", "s"], [[f"D{i % MAX_CATEGORIES}", i, f"s{i % MAX_SERIES}"] for i in range(600)]
    )
    spec = parse_chart({"kind": "line", "x": "d", "y": "n", "series": "s"})
    png, _ = render_chart(spec, many, tmp_path)
    assert _png_size(png.read_bytes()) == (700, 400)


def _glyph_ids(font_name: str, text: str) -> set[str]:
    """The SVG ids of ``text``'s glyphs in ``font_name`` (paths: font-glyph index); none
    is glyph 0, the empty box a font draws for a character it does not have."""
    font = font_manager.get_font(
        font_manager.findfont(font_manager.FontProperties(family=font_name))
    )
    indexes = {font.get_char_index(ord(ch)) for ch in text if not ch.isspace()}
    assert 0 not in indexes, text
    return {f"{font.postscript_name}-{i:x}" for i in indexes}


@needs_cjk_font
def test_chinese_text_is_drawn_in_a_cjk_font(tmp_path: Path) -> None:
    spec = parse_chart({"kind": "bar", "x": "district", "y": "n", "series": "year",
                        "title": "门诊量 Visits", "y_label": "人次"})  # fmt: skip
    table = table_from_rows(
        ["district", "n", "year"],
        [["梁溪区", 12, "2024年"], ["锡山区", 15, "2024年"], ["梁溪区", 14, "2025年"]],
    )
    fonts = chart_fonts(spec, table)
    assert len(fonts) == 1 and ("CJK" in fonts[0] or "Zen Hei" in fonts[0]), fonts
    _, svg = render_chart(spec, table, tmp_path)
    drawn = set(re.findall(r'<path id="([^"]+)"', svg.read_text(encoding="utf-8")))
    for text in ("门诊量 Visits", "人次", "梁溪区锡山", "2024年"):  # title, label, ticks, legend
        assert _glyph_ids(fonts[0], text) <= drawn, text
    assert not {d for d in drawn if d.startswith("DejaVuSans-")}  # one font for every text


@needs_cjk_font
def test_text_no_one_font_has_is_drawn_glyph_by_glyph_from_several(tmp_path: Path) -> None:
    """Chinese beside a letter the CJK fonts lack (Ą): each glyph comes from the first font
    that has it, never an empty box (before, only the first font drew and CJK became boxes)."""
    spec = parse_chart({"kind": "bar", "x": "district", "y": "n", "title": "门诊量 Ą"})
    table = table_from_rows(["district", "n"], [["梁溪区", 12], ["锡山区", 15]])
    fonts = chart_fonts(spec, table)
    assert fonts[0] == "DejaVu Sans" and len(fonts) > 1, fonts
    _, svg = render_chart(spec, table, tmp_path)
    drawn = set(re.findall(r'<path id="([^"]+)"', svg.read_text(encoding="utf-8")))
    assert _glyph_ids("DejaVu Sans", "Ą") <= drawn
    assert _glyph_ids(fonts[1], "门诊量梁溪区锡山") <= drawn


def test_latin_text_is_drawn_in_matplotlibs_own_font() -> None:
    """The same drawing on every host: no host font is chosen for text DejaVu Sans has."""
    spec = parse_chart({"kind": "bar", "x": "district", "y": "n", "title": "Visits, 2025"})
    assert chart_fonts(spec, TABLE) == ["DejaVu Sans"]


def test_chinese_text_without_a_cjk_font_is_refused_not_drawn_as_boxes() -> None:
    """On a host with matplotlib's font only (as without fonts-noto-cjk), the export's
    checks refuse Chinese text and say which package the operator installs."""
    spec = parse_chart({"kind": "bar", "x": "district", "y": "n", "title": "门诊量"})
    table = table_from_rows(["district", "n"], [["梁溪区", 12], ["B", 15]])
    with pytest.raises(PolicyViolation) as caught:
        chart_fonts(spec, table, fonts=("DejaVu Sans",))
    refusal = caught.value
    assert refusal.rule == "export-chart-font"
    assert "chart's title, values of x column 'district'" in refusal.message
    assert "fonts-noto-cjk" in refusal.message and "empty boxes" in refusal.message
    assert "梁溪区" not in refusal.message  # the table's values are not echoed


def test_text_no_installed_font_has_is_refused_in_the_checks(tmp_path: Path) -> None:
    """Linear B is in no font the platform uses: refused before anything is drawn."""
    spec = parse_chart({"kind": "bar", "x": "district", "y": "n", "y_label": "\U00010000"})
    with pytest.raises(PolicyViolation) as caught:
        render_chart(spec, TABLE, tmp_path / "out")
    assert caught.value.rule == "export-chart-font"
    assert "y_label" in caught.value.message and "fonts-noto-cjk" not in caught.value.message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "pie", "x": "a", "y": ["b"]},
        {"x": "a"},
        {"kind": "bar", "x": "a", "y": [], "extra": 1},
        {"kind": "bar", "x": "a" * 70, "y": ["b"]},
        "a bar chart",
    ],
)
def test_a_specification_refused_reads_in_chinese(raw: object) -> None:
    """What is wrong with each field reads in Chinese on the researcher's pages, field
    names and allowed values aside."""
    with pytest.raises(ValidationFailed) as caught:
        parse_chart(raw)
    shown = say(caught.value.rule, caught.value.message, "zh")
    assert shown and shown.startswith("图表说明无效（"), caught.value.message
    words = {w for w in re.findall(r"[A-Za-z]{3,}", shown) if w not in str(raw)}
    assert not words - {"bar", "line", "scatter", "histogram", "kind", "JSON"}, shown


def test_a_font_refusal_reads_in_chinese() -> None:
    spec = parse_chart({"kind": "bar", "x": "district", "y": "n", "title": "门诊量"})
    table = table_from_rows(["district", "n"], [["梁溪区", 12], ["B", 15]])
    with pytest.raises(PolicyViolation) as caught:
        chart_fonts(spec, table, fonts=("DejaVu Sans",))
    assert say(caught.value.rule, caught.value.message, "zh") == (
        "平台已安装的字体无法显示图表标题、x 字段 'district' 的取值中的字符，"
        "平台不会以空白方框代替；中文、日文或韩文文字需要平台主机安装 CJK 字体："
        "请平台运营方安装（Debian 软件包 fonts-noto-cjk）"
    )
