"""Read a provider's upload (CSV, Excel .xlsx or Parquet) into the catalogue's column types.

A file is accepted only if it has exactly the columns its catalogue entry
declares and every value can be read as the declared type (R2: Shanghai
Art.12; R14: Wuxi Art.13). Refusals name the file, the column and what is
allowed; they give counts and row numbers, never the offending values, which
may be personal data.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sandbox.contracts import CatalogEntry, Column
from sandbox.errors import ValidationFailed

SUPPORTED_SUFFIXES = (".csv", ".xlsx", ".parquet")
_ARTICLE = "Shanghai Art.12; Wuxi Art.13"


def _csv_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), else GB18030, the superset of GBK that Chinese Excel writes."""
    with path.open("rb") as f:
        head = f.read(1 << 16)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the sample's end
            return "gb18030"
    return "utf-8-sig"


def _read_csv(path: Path) -> pa.Table:
    """Every column as text, so the declared types, not a type sniffer, decide the cast."""
    encoding = _csv_encoding(path)
    with path.open(encoding=encoding, newline="") as f:
        header = next(csv.reader(f), [])
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=True
        ),
    )


def _read_xlsx(path: Path) -> pa.Table:
    """The first worksheet; its first row is the header. Blank rows and columns are skipped."""
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = [
            r
            for r in book.worksheets[0].iter_rows(values_only=True)
            if any(v is not None for v in r)
        ]
    finally:
        book.close()
    if not rows:
        return pa.table({})
    header, body = rows[0], rows[1:]
    names, arrays = [], []
    for i, name in enumerate(header):
        cells = [row[i] if i < len(row) else None for row in body]
        if name is None and all(c is None for c in cells):
            continue
        names.append(f"(column {i + 1} has no header)" if name is None else str(name))
        try:
            arrays.append(pa.array(cells))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed cell types: compare as text
            arrays.append(pa.array([None if c is None else str(c) for c in cells], pa.string()))
    return pa.table(arrays, names=names)


_READERS = {".csv": _read_csv, ".xlsx": _read_xlsx, ".parquet": pq.read_table}


def read_raw(path: Path) -> pa.Table:
    """The file's table as stored, before any catalogue check."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ValidationFailed(
            f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; "
            f"upload one of {', '.join(SUPPORTED_SUFFIXES)}",
            rule="upload-format",
            article=_ARTICLE,
        )
    try:
        return reader(path)
    except (OSError, pa.ArrowInvalid, ValueError, KeyError) as exc:
        raise ValidationFailed(
            f"{path.name}: cannot be read as {path.suffix.lstrip('.')} ({type(exc).__name__})",
            rule="upload-format",
            article=_ARTICLE,
        ) from exc


def _check_columns(path: Path, table: pa.Table, entry: CatalogEntry) -> None:
    present, declared = table.column_names, entry.column_names
    missing = [c for c in declared if c not in present]
    extra = [c for c in present if c not in declared]
    repeated = sorted({c for c in present if present.count(c) > 1})
    problems = [
        f"{label} {', '.join(names)}"
        for label, names in (
            ("repeated column(s)", repeated),
            ("missing column(s)", missing),
            ("undeclared column(s)", extra),
        )
        if names
    ]
    if problems:
        raise ValidationFailed(
            f"{path.name}: {'; '.join(problems)}; catalogue entry {entry.name!r} declares "
            f"exactly {', '.join(declared)} (declare new columns in the entry first)",
            rule="upload-columns",
            article=_ARTICLE,
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


#: Data row numbers from 1, as a spreadsheet user counts them; "#row" is never a column name.
_ROW_NAME = "#row"
_ROW = _quote(_ROW_NAME)


def _unreadable(column: Column) -> str:
    """SQL predicate: this row holds a value that is not of the column's declared type."""
    name = _quote(column.name)
    return f"{name} IS NOT NULL AND TRY_CAST({name} AS {column.type}) IS NULL"


def cast_to_entry(table: pa.Table, entry: CatalogEntry, origin: str) -> pa.Table:
    """Cast each column to its declared type, refusing if any non-null value does not fit."""
    checks = ", ".join(
        f"count(*) FILTER (WHERE {_unreadable(c)}), min({_ROW}) FILTER (WHERE {_unreadable(c)})"
        for c in entry.columns
    )
    casts = ", ".join(
        f"CAST({_quote(c.name)} AS {c.type}) AS {_quote(c.name)}" for c in entry.columns
    )
    numbered = table.append_column(_ROW_NAME, pa.array(range(1, table.num_rows + 1), pa.int64()))
    with duckdb.connect() as con:
        con.register("upload", numbered)
        counts = con.sql(f"SELECT {checks} FROM upload").fetchall()[0]
        assert counts is not None
        for i, column in enumerate(entry.columns):
            bad, first = counts[2 * i], counts[2 * i + 1]
            if bad:
                raise ValidationFailed(
                    f"{origin}: column {column.name!r} is declared {column.type}, but {bad} of "
                    f"{table.num_rows} rows cannot be read as {column.type} (first at data row "
                    f"{first}); correct those cells or change the declared type",
                    rule="upload-type",
                    article=_ARTICLE,
                )
        return con.sql(f"SELECT {casts} FROM upload ORDER BY {_ROW}").to_arrow_table()


def read_table(path: str | Path, entry: CatalogEntry) -> pa.Table:
    """Read an upload and return it with exactly the entry's columns, in order, cast to type."""
    path = Path(path)
    table = read_raw(path)
    _check_columns(path, table, entry)
    return cast_to_entry(table, entry, path.name)
