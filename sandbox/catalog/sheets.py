"""A CSV file's or worksheet's rows as the provider sees them in a spreadsheet.

Sheets from government systems often start with title rows (the report's name,
the reporting unit) above the header. The header is found after them, or taken
from the row the provider names; every value keeps its row number in the file
and its column letter, so that a refusal can point at the cell the provider
must correct (R2: Shanghai Art.12).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

import pyarrow as pa
from openpyxl.utils import get_column_letter

from sandbox.errors import ValidationFailed

ARTICLE = "Shanghai Art.12; Wuxi Art.13"
#: Title rows come first: the header is looked for among this many non-blank rows.
_LOOK_AHEAD = 30


@dataclass(frozen=True)
class Sheet:
    """The table under the header, with where each row and column is in the file."""

    table: pa.Table
    #: The file row (from 1) of each table row.
    rows: list[int]
    #: Each column's spreadsheet letter; None for a file without letters (Parquet).
    letters: list[str] | None = None
    #: The header's file row; None for a file whose columns are named by its format.
    header_row: int | None = None

    def renamed(self, names: list[str]) -> Sheet:
        """The same sheet with its columns named ``names``, in order."""
        return replace(self, table=self.table.rename_columns(names))

    def cells(self, column: str, rows: Sequence[int]) -> str:
        """Where values of ``column`` are, as a spreadsheet names them: ``cells D3, D7``."""
        if self.letters is None:
            return "rows " + ", ".join(map(str, rows))
        letter = self.letters[self.table.column_names.index(column)]
        return "cells " + ", ".join(f"{letter}{row}" for row in rows)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") if value.time() else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _looks_like_header(row: Sequence[object], widest: int) -> bool:
    """Text in at least three quarters of the widest row's cells; a title fills fewer."""
    filled = [v for v in row if not _blank(v)]
    return 4 * len(filled) >= 3 * widest and all(isinstance(v, str) for v in filled)


def header_index(numbered: Sequence[tuple[int, Sequence[object]]], header_row: int | None) -> int:
    """Where the header is among the non-blank ``(file row, cells)``: the row the provider
    named, else the first that looks like one (the first row when none does)."""
    if header_row is not None:
        for i, (number, _) in enumerate(numbered):
            if number == header_row:
                return i
        raise ValidationFailed(
            f"row {header_row}, named as the header row, is blank or past the end of the file",
            rule="upload-header",
            article=ARTICLE,
        )
    head = [cells for _, cells in numbered[:_LOOK_AHEAD]]
    widest = max((sum(not _blank(v) for v in cells) for cells in head), default=0)
    return next((i for i, cells in enumerate(head) if _looks_like_header(cells, widest)), 0)


def header_name(cell: object, letter: str) -> str:
    return f"(column {letter} has no header)" if _blank(cell) else str(cell).strip()


def from_rows(rows: Iterable[tuple[int, Sequence[object]]], header_row: int | None) -> Sheet:
    """The table under the header of ``(file row, cells)`` rows; blank rows are skipped, and
    so are columns with neither a header nor a value. A short row's missing cells are empty."""
    numbered = [(n, cells) for n, cells in rows if not all(_blank(v) for v in cells)]
    if not numbered:
        return Sheet(pa.table({}), [])
    start = header_index(numbered, header_row)
    (header_at, header), body = numbered[start], numbered[start + 1 :]
    width = max(len(cells) for _, cells in numbered[start:])
    names, letters, arrays = [], [], []
    for j in range(width):
        cells = [None if j >= len(row) or _blank(row[j]) else row[j] for _, row in body]
        head = header[j] if j < len(header) else None
        if _blank(head) and all(c is None for c in cells):
            continue
        letters.append(get_column_letter(j + 1))
        names.append(header_name(head, letters[-1]))
        try:
            arrays.append(pa.array(cells))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed cell types: read them as text
            arrays.append(pa.array([None if c is None else _text(c) for c in cells], pa.string()))
        if pa.types.is_null(arrays[-1].type):
            arrays[-1] = arrays[-1].cast(pa.string())
    return Sheet(pa.table(arrays, names=names), [n for n, _ in body], letters, header_at)
