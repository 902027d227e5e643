"""Reading CSV, Excel and Parquet uploads into the catalogue's declared types."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.catalog.reading import read_table
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
        ValidationFailed, match=r"undeclared column\(s\) \(column 6 has no header\)"
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
    assert "'cost' is declared DOUBLE" in message
    assert "2 of 3 rows" in message
    assert "first at data row 2" in message
    assert "1 200元" not in message and "about 7" not in message


def test_impossible_date_is_refused(tmp_path: Path, entry: CatalogEntry) -> None:
    rows = [row[:] for row in ROWS]
    rows[0][1] = "2023-02-29"
    with pytest.raises(ValidationFailed, match=r"'visit_date' is declared DATE, but 1 of 3"):
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
