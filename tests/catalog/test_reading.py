"""Reading CSV, Excel and Parquet uploads into the catalogue's declared types."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.catalog.reading import Encoding, ReadOptions, read_sheet, read_table
from sandbox.contracts import CatalogEntry
from sandbox.errors import ValidationFailed
from tests.catalog.idgen import resident_id

ID_A = resident_id("990201", date(1980, 5, 17), 11)
ID_B = resident_id("990202", date(1991, 2, 3), 22)
HEADER = ["patient_id", "visit_date", "district", "cost", "visits"]
ROWS = [
    [ID_A, "2024-01-05", "梁溪区", "12.5", "1"],
    [ID_B, "2024-02-29", "滨湖区", "300", "2"],
    [ID_A, "", "梁溪区", "7.25", ""],
]


def _write_csv(
    path: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def _write_xlsx(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [header, *rows]:
        sheet.append(row)
    book.save(path)
    return path


def _expected() -> pa.Table:
    return pa.table(
        {
            "patient_id": [ID_A, ID_B, ID_A],
            "visit_date": pa.array([date(2024, 1, 5), date(2024, 2, 29), None], pa.date32()),
            "district": ["梁溪区", "滨湖区", "梁溪区"],
            "cost": [12.5, 300.0, 7.25],
            "visits": pa.array([1, 2, None], pa.int32()),
        }
    )


def test_csv_is_cast_to_declared_types(tmp_path: Path, entry: CatalogEntry) -> None:
    table = read_table(_write_csv(tmp_path / "v.csv", ROWS), entry)
    assert table.equals(_expected())


def test_gb18030_csv_from_chinese_excel_reads_the_same(tmp_path: Path, entry: CatalogEntry) -> None:
    path = _write_csv(tmp_path / "v.csv", ROWS, encoding="gb18030")
    assert read_table(path, entry).equals(_expected())


def test_xlsx_with_native_cell_types(tmp_path: Path, entry: CatalogEntry) -> None:
    rows = [
        [ID_A, datetime(2024, 1, 5), "梁溪区", 12.5, 1],
        [ID_B, datetime(2024, 2, 29), "滨湖区", 300, 2],
        [ID_A, None, "梁溪区", 7.25, None],
    ]
    assert read_table(_write_xlsx(tmp_path / "v.xlsx", HEADER, rows), entry).equals(_expected())


def test_parquet_in_another_column_order(tmp_path: Path, entry: CatalogEntry) -> None:
    shuffled = _expected().select(["visits", "cost", "district", "visit_date", "patient_id"])
    pq.write_table(shuffled, tmp_path / "v.parquet")
    table = read_table(tmp_path / "v.parquet", entry)
    assert table.column_names == entry.column_names
    assert table.equals(_expected())


def test_missing_and_extra_columns_are_named(tmp_path: Path, entry: CatalogEntry) -> None:
    header = ["patient_id", "visit_date", "district", "cost", "phone"]
    with pytest.raises(ValidationFailed) as caught:
        read_table(_write_csv(tmp_path / "v.csv", ROWS, header), entry)
    message = str(caught.value)
    assert caught.value.rule == "upload-columns"
    assert "v.csv" in message
    assert "missing column(s) visits" in message
    assert "undeclared column(s) phone" in message
    assert "patient_id, visit_date, district, cost, visits" in message


def test_repeated_header_is_refused(tmp_path: Path, entry: CatalogEntry) -> None:
    header = [*HEADER[:4], "cost"]
    with pytest.raises(ValidationFailed, match="repeated column.s. cost; missing column.s. visits"):
        read_table(_write_csv(tmp_path / "v.csv", ROWS, header), entry)


def test_xlsx_blank_columns_are_skipped_and_zero_rows_kept(
    tmp_path: Path, entry: CatalogEntry
) -> None:
    rows = [
        [ID_A, datetime(2024, 1, 5), "梁溪区", 0, 0, None],
        [None, None, None, None, None, None],
    ]
    table = read_table(_write_xlsx(tmp_path / "v.xlsx", [*HEADER, None], rows), entry)
    assert table.num_rows == 1
    assert table["visits"].to_pylist() == [0]


def test_xlsx_unnamed_column_with_data_is_refused(tmp_path: Path, entry: CatalogEntry) -> None:
    rows = [[ID_A, datetime(2024, 1, 5), "梁溪区", 0, 0, "note"]]
    with pytest.raises(
        ValidationFailed, match=r"undeclared column\(s\) \(column F has no header\)"
    ):
        read_table(_write_xlsx(tmp_path / "v.xlsx", [*HEADER, None], rows), entry)


def test_failed_cast_gives_count_and_row_but_never_the_values(
    tmp_path: Path, entry: CatalogEntry
) -> None:
    rows = [row[:] for row in ROWS]
    rows[1][3] = "1 200元"
    rows[2][3] = "about 7"
    with pytest.raises(ValidationFailed) as caught:
        read_table(_write_csv(tmp_path / "v.csv", rows), entry)
    message = str(caught.value)
    assert caught.value.rule == "upload-type"
    assert "column 'cost' is declared DOUBLE" in message
    assert "2 of 3 rows cannot be read as DOUBLE, at cells D3, D4" in message
    assert "1 200元" not in message and "about 7" not in message


def test_impossible_date_is_refused(tmp_path: Path, entry: CatalogEntry) -> None:
    rows = [row[:] for row in ROWS]
    rows[0][1] = "2023-02-29"
    with pytest.raises(
        ValidationFailed, match=r"'visit_date' is declared DATE, but 1 of 3 rows .* at cells B2 "
    ):
        read_table(_write_csv(tmp_path / "v.csv", rows), entry)


@pytest.mark.parametrize("name", ["v.xls", "v.json", "v"])
def test_unsupported_file_types_are_refused(tmp_path: Path, entry: CatalogEntry, name: str) -> None:
    (tmp_path / name).write_text("{}")
    with pytest.raises(ValidationFailed, match="upload one of .csv, .xlsx, .parquet") as caught:
        read_table(tmp_path / name, entry)
    assert caught.value.rule == "upload-format"


def test_corrupt_parquet_is_refused_clearly(tmp_path: Path, entry: CatalogEntry) -> None:
    (tmp_path / "v.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValidationFailed, match="v.parquet: cannot be read as parquet"):
        read_table(tmp_path / "v.parquet", entry)


# -- files as they come from government systems --------------------------------------------


def _csv_bytes(rows: list[list[str]], header: list[str] = HEADER) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue()


@pytest.mark.parametrize("saved_as", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
@pytest.mark.parametrize("chosen", ["auto", "as saved"])
def test_every_encoding_reads_the_same_detected_or_chosen(
    tmp_path: Path, entry: CatalogEntry, saved_as: str, chosen: str
) -> None:
    path = tmp_path / "v.csv"
    path.write_bytes(_csv_bytes(ROWS).encode(saved_as))
    encoding = Encoding.auto if chosen == "auto" else Encoding(saved_as.removesuffix("-sig"))
    assert read_table(path, entry, ReadOptions(encoding=encoding)).equals(_expected())


def test_gbk_is_detected_from_the_whole_file_not_its_first_rows(
    tmp_path: Path, entry: CatalogEntry
) -> None:
    """Many ASCII-only rows first, as in a long export sorted by an ASCII column."""
    ascii_rows = [[ID_A, "2024-01-05", "", "1", "1"]] * 20_000
    path = tmp_path / "v.csv"
    path.write_bytes(_csv_bytes([*ascii_rows, *ROWS]).encode("gbk"))
    assert len(path.read_bytes()) > 1 << 16  # more than the 64 KiB once sampled
    table = read_table(path, entry)
    assert table["district"].to_pylist()[-3:] == ["梁溪区", "滨湖区", "梁溪区"]


def _refusal(path: Path, entry: CatalogEntry, options: ReadOptions = ReadOptions()) -> str:
    """The refusal's text, checked to hold no server path."""
    with pytest.raises(ValidationFailed) as caught:
        read_table(path, entry, options)
    message = str(caught.value)
    assert str(path.parent) not in message and "/tmp" not in message
    return message


def test_the_wrong_encoding_is_refused_at_its_row_and_column(
    tmp_path: Path, entry: CatalogEntry
) -> None:
    path = tmp_path / "v.csv"
    path.write_bytes(_csv_bytes(ROWS).encode("gbk"))
    message = _refusal(path, entry, ReadOptions(encoding=Encoding.utf_8))
    assert "v.csv: row 2, column 'district' (C) cannot be read as UTF-8" in message
    assert "[upload-encoding;" in message
    assert "梁溪区".encode("gbk").decode("utf-8", errors="replace") not in message


def test_a_gb18030_character_is_not_gbk(tmp_path: Path, entry: CatalogEntry) -> None:
    """GB18030 has characters GBK lacks (here U+20BB7 in a name); GBK names the cell."""
    rows = [row[:] for row in ROWS]
    rows[2][2] = "𠮷溪区"
    path = tmp_path / "v.csv"
    path.write_bytes(_csv_bytes(rows).encode("gb18030"))
    message = _refusal(path, entry, ReadOptions(encoding=Encoding.gbk))
    assert "row 4, column 'district' (C) cannot be read as GBK" in message
    assert read_table(path, entry, ReadOptions(encoding=Encoding.gb18030)).num_rows == 3
    assert read_table(path, entry)["district"].to_pylist()[2] == "𠮷溪区"


def test_a_file_marked_utf_8_is_not_read_as_gbk(tmp_path: Path, entry: CatalogEntry) -> None:
    path = tmp_path / "v.csv"
    path.write_bytes(_csv_bytes(ROWS).encode("utf-8-sig"))
    message = _refusal(path, entry, ReadOptions(encoding=Encoding.gbk))
    assert "starts with UTF-8's byte-order mark, so it is UTF-8, not GBK" in message


def test_bytes_no_encoding_reads_are_refused_at_their_cell(
    tmp_path: Path, entry: CatalogEntry
) -> None:
    text = _csv_bytes(ROWS).encode("utf-8")
    path = tmp_path / "v.csv"
    path.write_bytes(text.replace("滨湖区".encode(), b"\xff\xfe\xff"))
    message = _refusal(path, entry)
    assert "row 3, column 'district' (C) cannot be read as UTF-8 or GB18030" in message


TITLE_ROWS = [["2024年第一季度门诊就诊情况"], ["填报单位：梁溪区卫生健康委员会"]]


def test_xlsx_header_after_two_title_rows(tmp_path: Path, entry: CatalogEntry) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [*TITLE_ROWS, HEADER, *ROWS]:
        sheet.append(row)
    sheet.merge_cells("A1:E1")
    book.save(tmp_path / "v.xlsx")
    assert read_sheet(tmp_path / "v.xlsx").header_row == 3
    assert read_table(tmp_path / "v.xlsx", entry).equals(_expected())
    sheet["D5"] = "三百"
    book.save(tmp_path / "v.xlsx")
    message = _refusal(tmp_path / "v.xlsx", entry)
    assert "column 'cost' is declared DOUBLE, but 1 of 3 rows cannot be read as DOUBLE, " in message
    assert "at cells D5 (numbers may group thousands" in message and "三百" not in message


def test_csv_header_after_title_rows_padded_by_excel(tmp_path: Path, entry: CatalogEntry) -> None:
    titles = [[title, "", "", "", ""] for (title,) in TITLE_ROWS]
    path = tmp_path / "v.csv"
    path.write_bytes(_csv_bytes([HEADER, *ROWS], header=titles[0]).encode("gbk"))
    path.write_bytes(("\r\n".join(",".join(t) for t in titles[1:]) + "\r\n").encode("gbk")
                     + path.read_bytes().replace(b"\r\n", b"\r\n\r\n", 1))  # fmt: skip
    assert read_sheet(path).header_row == 4  # a subtitle, the title, a blank row, the header
    assert read_table(path, entry).equals(_expected())


def test_the_header_row_chosen_on_the_form_wins(tmp_path: Path, entry: CatalogEntry) -> None:
    """A subtitle that fills most cells looks like a header; the provider names the real one."""
    subtitle = ["单位", "梁溪区卫健委", "单位：元", "2024年", ""]
    path = tmp_path / "v.csv"
    path.write_bytes(_csv_bytes([HEADER, *ROWS], header=subtitle).encode("utf-8"))
    assert "missing column(s)" in _refusal(path, entry)
    assert read_table(path, entry, ReadOptions(header_row=2)).equals(_expected())
    message = _refusal(path, entry, ReadOptions(header_row=9))
    assert "row 9, named as the header row, is blank or past the end of the file" in message


DATE_FORMS = ["2024-03-01", "2024/3/1", "2024年3月1日", "2024.03.01", "20240301", " 2024/03/01 "]


def test_dates_and_numbers_as_people_write_them(tmp_path: Path, entry: CatalogEntry) -> None:
    rows = [
        [ID_A, day, "梁溪区", cost, visits]
        for day, cost, visits in zip(
            DATE_FORMS,
            ["1,234.5", "12", "-1,000", "1,000,000", "0.5", "7"],
            ["1,200", "3", "", "2", "1,000,000", "0"],
            strict=True,
        )
    ]
    table = read_table(_write_csv(tmp_path / "v.csv", rows), entry)
    assert table["visit_date"].to_pylist() == [date(2024, 3, 1)] * len(DATE_FORMS)
    assert table["cost"].to_pylist() == [1234.5, 12.0, -1000.0, 1_000_000.0, 0.5, 7.0]
    assert table["visits"].to_pylist() == [1200, 3, None, 2, 1_000_000, 0]


def test_dates_in_xlsx_text_cells_and_date_cells_alike(tmp_path: Path, entry: CatalogEntry) -> None:
    rows = [[ID_A, day, "梁溪区", "1,234.5", 1] for day in [*DATE_FORMS, datetime(2024, 3, 1)]]
    table = read_table(_write_xlsx(tmp_path / "v.xlsx", HEADER, rows), entry)
    assert table["visit_date"].to_pylist() == [date(2024, 3, 1)] * (len(DATE_FORMS) + 1)
    assert table["cost"].to_pylist() == [1234.5] * (len(DATE_FORMS) + 1)


@pytest.mark.parametrize(
    ("column", "value", "cell"),
    [
        ("cost", "1,5", "D3"),  # a decimal comma, not a thousands separator
        ("cost", "12,34", "D3"),
        ("visits", "1,2,3", "E3"),
        ("visit_date", "2024年2月30日", "B3"),
        ("visit_date", "2024031", "B3"),  # eight digits or none
        ("visit_date", "3/1/2024", "B3"),
    ],
)
def test_unreadable_forms_are_refused_at_their_cell(
    tmp_path: Path, entry: CatalogEntry, column: str, value: str, cell: str
) -> None:
    rows = [row[:] for row in ROWS]
    rows[1][HEADER.index(column)] = value
    message = _refusal(_write_csv(tmp_path / "v.csv", rows), entry)
    assert f"column {column!r} is declared" in message and f"at cells {cell} (" in message
    assert value not in message.split("(")[0]


def test_every_unreadable_column_is_named_with_its_first_rows(
    tmp_path: Path, entry: CatalogEntry
) -> None:
    rows = [[ID_A, "昨天", "梁溪区", "贵", "1"]] * 7
    message = _refusal(_write_csv(tmp_path / "v.csv", rows), entry)
    assert "'visit_date' is declared DATE, but 7 of 7 rows" in message
    assert "at cells B2, B3, B4, B5, B6 and 2 more (dates are read as" in message
    assert "'cost' is declared DOUBLE, but 7 of 7 rows" in message
    assert "昨天" not in message and "贵" not in message


def test_parquet_values_are_located_by_row(tmp_path: Path, entry: CatalogEntry) -> None:
    table = _expected().set_column(3, "cost", pa.array(["12.5", "三百", "7.25"]))
    pq.write_table(table, tmp_path / "v.parquet")
    message = _refusal(tmp_path / "v.parquet", entry)
    assert "1 of 3 rows cannot be read as DOUBLE, at rows 2 (" in message


def test_corrupt_xlsx_is_refused_without_a_path(tmp_path: Path, entry: CatalogEntry) -> None:
    (tmp_path / "v.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    assert "v.xlsx: cannot be read as xlsx" in _refusal(tmp_path / "v.xlsx", entry)


def test_times_as_people_write_them(tmp_path: Path, entry: CatalogEntry) -> None:
    columns = [
        c.model_copy(update={"type": "TIMESTAMP"}) if c.name == "visit_date" else c
        for c in entry.columns
    ]
    timed = entry.model_copy(update={"columns": columns})
    written = ["2024-03-01 08:30:00", "2024/3/1 8:30", "2024年3月1日 8:30", "2024年3月1日 08:30:00"]
    rows = [[ID_A, when, "梁溪区", "1", "1"] for when in [*written, "2024年3月1日"]]
    table = read_table(_write_csv(tmp_path / "v.csv", rows), timed)
    assert table["visit_date"].to_pylist() == [datetime(2024, 3, 1, 8, 30)] * 4 + [
        datetime(2024, 3, 1)
    ]
    rows[1][1] = "2024年3月1日 下午"
    message = _refusal(_write_csv(tmp_path / "v.csv", rows), timed)
    assert "at cells B3 (times are read as" in message


def test_utf_16_text_is_refused(tmp_path: Path, entry: CatalogEntry) -> None:
    """Excel's "Unicode text" is UTF-16; without its byte-order mark it decodes, as NULs."""
    path = tmp_path / "v.csv"
    path.write_bytes(_csv_bytes(ROWS).encode("utf-16"))
    assert "v.csv: row 1, column A cannot be read as UTF-8 or GB18030" in _refusal(path, entry)
    path.write_bytes(_csv_bytes(ROWS).encode("utf-16-le"))
    assert "v.csv: row 1 holds NUL characters, so it is not CSV text" in _refusal(path, entry)
