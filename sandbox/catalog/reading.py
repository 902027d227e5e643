"""Read a provider's upload (CSV, Excel .xlsx or Parquet) into the catalogue's column types.

A file is accepted only if it has exactly the columns its catalogue entry
declares and every value can be read as the declared type (R2: Shanghai
Art.12; R14: Wuxi Art.13). Files are read as they come from government
systems: CSV in UTF-8, GBK or GB18030, a header after title rows, dates and
numbers as people write them (:mod:`sandbox.catalog.cell_forms`). Refusals name
the file by its name only, the row and column as the provider sees them and
what is allowed; they never give the offending values, which may be personal
data, nor a path on the server.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PureWindowsPath

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl.utils.exceptions import InvalidFileException

from sandbox.catalog.cell_forms import ACCEPTED, read_text
from sandbox.catalog.csv_text import AUTO, csv_rows
from sandbox.catalog.sheets import ARTICLE, Sheet, from_rows
from sandbox.contracts import CatalogEntry, Column
from sandbox.contracts.names import nfc
from sandbox.errors import ValidationFailed

SUPPORTED_SUFFIXES = (".csv", ".xlsx", ".parquet")


class Encoding(StrEnum):
    """A CSV file's encoding as the provider chooses it (its codec: ``csv_text.CODECS``)."""

    auto = AUTO
    utf_8 = "utf-8"
    gbk = "gbk"
    gb18030 = "gb18030"


@dataclass(frozen=True)
class ReadOptions:
    """How to read an upload, as the provider chose on the form (defaults: detect both)."""

    encoding: Encoding = Encoding.auto
    #: The header's row in the file, from 1; None finds it after any title rows.
    header_row: int | None = None


def upload_name(filename: str) -> str:
    """The name an uploaded file is kept under: the sender's own without any folder, so that
    refusals name the file the provider knows (``data`` plus its type when it has none)."""
    name = PureWindowsPath(filename).name  # also a Windows path, with backslashes
    if not name or name.startswith(".") or len(name.encode()) > 200:
        return "data" + Path(name).suffix.lower()
    return name


@dataclass(frozen=True)
class Upload:
    """An uploaded file's name and bytes, read in memory: an upload kept encrypted is
    decrypted into one of these, never into a file."""

    name: str
    data: bytes


def _upload(source: Path | Upload) -> Upload:
    return source if isinstance(source, Upload) else Upload(source.name, source.read_bytes())


def _read_csv(upload: Upload, options: ReadOptions) -> Sheet:
    """Every value as text, so the declared types, not a type sniffer, decide the cast."""
    found = csv_rows(upload.data, options.encoding, options.header_row, upload.name)
    return from_rows(found, options.header_row)


def _read_xlsx(upload: Upload, options: ReadOptions) -> Sheet:
    """The first worksheet, with the cell types Excel stored."""
    book = openpyxl.load_workbook(io.BytesIO(upload.data), read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # some writers record wrong dimensions; read every row
        return from_rows(enumerate(sheet.iter_rows(values_only=True), 1), options.header_row)
    finally:
        book.close()


def _read_parquet(upload: Upload, options: ReadOptions) -> Sheet:
    table = pq.read_table(pa.BufferReader(upload.data))
    return Sheet(table, list(range(1, table.num_rows + 1)))


_READERS = {".csv": _read_csv, ".xlsx": _read_xlsx, ".parquet": _read_parquet}


def read_sheet(source: Path | Upload, options: ReadOptions = ReadOptions()) -> Sheet:
    """The file's table as stored, before any catalogue check, with where each cell is."""
    path = Path(source.name)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ValidationFailed(
            f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; "
            f"upload one of {', '.join(SUPPORTED_SUFFIXES)}",
            rule="upload-format",
            article=ARTICLE,
        )
    try:
        sheet = reader(_upload(source), options)
    except (
        OSError, pa.ArrowInvalid, ValueError, KeyError, csv.Error, zipfile.BadZipFile,
        InvalidFileException,
    ) as exc:  # fmt: skip
        raise ValidationFailed(
            f"{path.name}: cannot be read as {path.suffix.lstrip('.')} ({type(exc).__name__})",
            rule="upload-format",
            article=ARTICLE,
        ) from exc
    # Headers in NFC, as the catalogue keeps names: the same characters match however the
    # file's system composed them (``sandbox.contracts.names``).
    return sheet.renamed([nfc(name) for name in sheet.table.column_names])


def _check_columns(origin: str, table: pa.Table, entry: CatalogEntry) -> None:
    present, declared = table.column_names, [c.file_header for c in entry.columns]
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
            f"{origin}: {'; '.join(problems)}; catalogue entry {entry.name!r} declares "
            f"exactly {', '.join(declared)} (declare new columns in the entry first)",
            rule="upload-columns",
            article=ARTICLE,
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


#: The file row of each value; "#row" is never a column name.
_ROW_NAME = "#row"
_ROW = _quote(_ROW_NAME)
#: How many of a column's unreadable rows a refusal lists.
_LISTED = 5


def _value(column: Column, arrow_type: pa.DataType) -> str:
    """SQL: the column's value in its declared type, NULL where it cannot be read so."""
    name = _quote(column.name)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return read_text(name, column.type)
    return f"TRY_CAST({name} AS {column.type})"


def _unreadable(sheet: Sheet, column: Column, bad: int, rows: list[int]) -> str:
    more = f" and {bad - len(rows)} more" if bad > len(rows) else ""
    accepted = ACCEPTED.get(column.type)
    return (
        f"column {column.name!r} is declared {column.type}, but {bad} of "
        f"{sheet.table.num_rows} rows cannot be read as {column.type}, at "
        f"{sheet.cells(column.name, rows)}{more}" + (f" ({accepted})" if accepted else "")
    )


def cast_to_entry(sheet: Sheet, entry: CatalogEntry, origin: str) -> pa.Table:
    """Cast each column to its declared type, refusing if any non-null value does not fit;
    the refusal names every such column with the rows where its values are."""
    schema = sheet.table.schema
    values = {c.name: _value(c, schema.field(c.name).type) for c in entry.columns}
    failing = {c.name: f"{_quote(c.name)} IS NOT NULL AND {values[c.name]} IS NULL"
               for c in entry.columns}  # fmt: skip
    checks = ", ".join(
        f"count(*) FILTER (WHERE {p}), list_slice(list({_ROW} ORDER BY {_ROW}) "
        f"FILTER (WHERE {p}), 1, {_LISTED})"
        for p in failing.values()
    )
    numbered = sheet.table.append_column(_ROW_NAME, pa.array(sheet.rows, pa.int64()))
    with duckdb.connect() as con:
        con.register("upload", numbered)
        found = con.sql(f"SELECT {checks} FROM upload").fetchall()[0]
        problems = [
            _unreadable(sheet, column, found[2 * i], found[2 * i + 1])
            for i, column in enumerate(entry.columns)
            if found[2 * i]
        ]
        if problems:
            raise ValidationFailed(
                f"{origin}: {'; '.join(problems)}; correct those cells or change the declared type",
                rule="upload-type",
                article=ARTICLE,
            )
        casts = ", ".join(f"{values[c.name]} AS {_quote(c.name)}" for c in entry.columns)
        return con.sql(f"SELECT {casts} FROM upload ORDER BY {_ROW}").to_arrow_table()


def read_table(
    source: str | Path | Upload, entry: CatalogEntry, options: ReadOptions = ReadOptions()
) -> pa.Table:
    """Read an upload and return it with exactly the entry's columns, in order, cast to type."""
    source = source if isinstance(source, Upload) else Path(source)
    sheet = read_sheet(source, options)
    _check_columns(source.name, sheet.table, entry)
    named = {c.file_header: c.name for c in entry.columns}
    sheet = sheet.renamed([named[header] for header in sheet.table.column_names])
    return cast_to_entry(sheet, entry, source.name)
