"""A CSV upload's rows, decoded in the encoding the provider chose or the one detected.

Chinese government systems and Excel write CSV in GBK or GB18030 as often as in
UTF-8. Detection tries UTF-8 (with or without BOM) and then GB18030, the
superset of GBK, on the whole file, so a file whose first rows happen to be
ASCII is not taken for UTF-8. Bytes the encoding cannot read are refused with
the row and column where they are, never with the bytes themselves.
"""

from __future__ import annotations

import codecs
import csv
import io

from openpyxl.utils import get_column_letter

from sandbox.catalog.sheets import ARTICLE, header_index
from sandbox.errors import ValidationFailed

#: The encodings a provider may choose, by the name the form shows, and their codecs.
CODECS = {"utf-8": "utf-8-sig", "gbk": "gbk", "gb18030": "gb18030"}
AUTO = "auto"


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """Parsed rows with the file row each starts on (a quoted value may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out, line = [], 1
    for cells in reader:
        out.append((line, cells))
        line = reader.line_num + 1
    return out


def _where(data: bytes, error: UnicodeDecodeError, codec: str, header_row: int | None) -> str:
    """The cell holding the bytes ``error`` is about, as ``row 7, column 'name' (C)``."""
    line_start = data.rfind(b"\n", 0, error.start) + 1
    row = data.count(b"\n", 0, error.start) + 1
    left = data[line_start : error.start].decode(codec, errors="replace")
    index = len(next(csv.reader([left]), []) or [""]) - 1
    letter = get_column_letter(index + 1)
    above = [
        (n, cells)
        for n, cells in _rows(data[:line_start].decode(codec, errors="replace"))
        if any(c.strip() for c in cells)
    ]
    if above and (header_row is None or header_row < row):
        _, header = above[header_index(above, header_row)]
        if index < len(header) and header[index].strip():
            return f"row {row}, column {header[index].strip()!r} ({letter})"
    return f"row {row}, column {letter}"


def _decode(data: bytes, names: tuple[str, ...], header_row: int | None, origin: str) -> str:
    """The text in the first of ``names`` that reads the whole file. If none does, the
    refusal points where the one that read furthest stopped."""
    tried = " or ".join(n.upper() for n in names)
    if "utf-8" not in names and data.startswith(codecs.BOM_UTF8):
        raise ValidationFailed(
            f"{origin}: the file starts with UTF-8's byte-order mark, so it is UTF-8, "
            f"not {tried}; choose UTF-8 or automatic detection",
            rule="upload-encoding",
            article=ARTICLE,
        )
    failures = []
    for name in names:
        try:
            return data.decode(CODECS[name])
        except UnicodeDecodeError as exc:
            failures.append((exc.start, name, exc))
    _, name, exc = max(failures, key=lambda f: f[0])
    raise ValidationFailed(
        f"{origin}: {_where(data, exc, CODECS[name], header_row)} cannot be read as {tried}; "
        "save the file as CSV UTF-8, or choose the encoding it was saved in",
        rule="upload-encoding",
        article=ARTICLE,
    ) from exc


def csv_rows(
    data: bytes, encoding: str, header_row: int | None, origin: str
) -> list[tuple[int, list[str]]]:
    """Every row of a CSV file with its file row number, blank rows included."""
    if encoding != AUTO:
        names: tuple[str, ...] = (encoding,)
    elif data.startswith(codecs.BOM_UTF8):  # marked as UTF-8
        names = ("utf-8",)
    else:
        names = ("utf-8", "gb18030")
    text = _decode(data, names, header_row, origin)
    if "\x00" in text:  # decodes, but is no text: UTF-16 without its byte-order mark
        raise ValidationFailed(
            f"{origin}: row {text.count(chr(10), 0, text.index(chr(0))) + 1} holds NUL "
            'characters, so it is not CSV text (Excel\'s "Unicode text" is UTF-16); save the '
            "file as CSV UTF-8",
            rule="upload-encoding",
            article=ARTICLE,
        )
    return _rows(text)
