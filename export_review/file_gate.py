"""The file gate: what kinds of file may be submitted for export, and what they may hold.

Allowed are CSV tables, PNG figures, plain text or Markdown reports and JSON,
recognised by their content as well as their extension (a renamed binary is
refused). Files are bounded in size and rows; a CSV with an identifier column
(by catalogue name, or by values that are valid 18-digit resident ID numbers
or 18-character unified social credit codes) is refused, as is any text with
such a value (Rizhao Art.10, 29; Putuo Art.32); every figure must come with
the data behind it, so reviewers check numbers, not pixels.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sandbox.catalog.identifiers import is_credit_code, is_resident_id
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry
from sandbox.errors import PolicyViolation

FileKind = Literal["csv", "png", "text", "json"]
EXTENSIONS: dict[str, FileKind] = {
    ".csv": "csv",
    ".png": "png",
    ".txt": "text",
    ".md": "text",
    ".json": "json",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Default size limit per file; large enough for any figure or summary table.
MAX_BYTES = 10 * 1024 * 1024
_OUTPUTS = "agreement clause outputs"
_IDENTIFIERS = "Rizhao Art.29; Putuo Art.32"
_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{18}(?![0-9A-Za-z])")


@dataclass(frozen=True)
class GateLimits:
    """Size and row limits; rows default to the agreement's ``disclosure.max_result_rows``."""

    max_bytes: int = MAX_BYTES
    max_rows: int = 10000


@dataclass(frozen=True)
class CheckedFile:
    path: Path
    kind: FileKind
    rows: int | None = None


def _refuse(rule: str, message: str, article: str = _OUTPUTS) -> PolicyViolation:
    return PolicyViolation(rule, article, message)


def _text(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(
            "export-file-type",
            f"{path.name}: is not UTF-8 text; allowed are CSV, PNG, TXT/Markdown and JSON",
        ) from exc
    if any(ch in text for ch in "\x00\x1b\x7f"):
        raise _refuse(
            "export-file-type",
            f"{path.name}: holds control characters, so it is not "
            "plain text; allowed are CSV, PNG, TXT/Markdown and JSON",
        )
    return text


def _has_identifier_value(values: Iterable[str]) -> bool:
    return any(
        is_resident_id(tok.upper()) or is_credit_code(tok.upper())
        for value in values
        for tok in _TOKEN.findall(value)
    )


def _check_csv(path: Path, text: str, identifier_names: set[str], limits: GateLimits) -> int:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or len({len(r) for r in rows if r}) != 1:
        raise _refuse(
            "export-file-type", f"{path.name}: is not a rectangular CSV table with a header row"
        )
    header = [h.strip().lower() for h in rows[0]]
    named = sorted(identifier_names.intersection(header))
    if named:
        raise _refuse(
            "export-file-identifier",
            f"{path.name}: has identifier column(s) "
            f"{', '.join(named)}; identifiers never leave the platform",
            _IDENTIFIERS,
        )
    if len(rows) - 1 > limits.max_rows:
        raise _refuse(
            "export-file-rows",
            f"{path.name}: has {len(rows) - 1} rows; at most {limits.max_rows} may be exported",
            "agreement clause disclosure.max_result_rows",
        )
    return len(rows) - 1


def check_file(path: Path, *, identifier_names: set[str], limits: GateLimits) -> CheckedFile:
    """Check one file, or raise :class:`PolicyViolation` naming the rule that refused it."""
    kind = EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise _refuse(
            "export-file-type",
            f"{path.name}: type {path.suffix or '(none)'} is not "
            f"exported; allowed: {', '.join(sorted(EXTENSIONS))}",
        )
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _refuse(
            "export-file-size",
            f"{path.name}: is {size} bytes; at most {limits.max_bytes} bytes per file",
        )
    data = path.read_bytes()
    if kind == "png":
        if not data.startswith(PNG_MAGIC):
            raise _refuse("export-file-type", f"{path.name}: is named .png but is not a PNG image")
        return CheckedFile(path, kind)
    text = _text(path, data)
    if _has_identifier_value(text.splitlines()):
        raise _refuse(
            "export-file-identifier",
            f"{path.name}: contains a value that is a resident "
            "ID number or a social credit code; remove identifiers",
            _IDENTIFIERS,
        )
    if kind == "json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise _refuse(
                "export-file-type", f"{path.name}: is named .json but does not parse as JSON"
            ) from exc
    if kind == "csv":
        return CheckedFile(path, kind, _check_csv(path, text, identifier_names, limits))
    return CheckedFile(path, kind)


def identifier_names(catalog: Mapping[str, CatalogEntry], agreement: Agreement) -> set[str]:
    """Column names that are identifiers (or protected entities) in the agreement's datasets."""
    names: set[str] = set()
    for name in agreement.datasets:
        entry = catalog[name]
        names.update(entry.identifier_columns)
        if entry.entity:
            names.add(entry.entity)
    return names


def check_files(
    paths: Sequence[Path],
    *,
    agreement: Agreement,
    catalog: Mapping[str, CatalogEntry],
    figure_data: Mapping[str, str],
    limits: GateLimits | None = None,
) -> list[CheckedFile]:
    """Check every file of an export request; ``figure_data`` maps each figure to its data file."""
    limits = limits or GateLimits(max_rows=agreement.disclosure.max_result_rows)
    names = identifier_names(catalog, agreement)
    checked = [check_file(Path(p), identifier_names=names, limits=limits) for p in paths]
    data_files = {c.path.name for c in checked if c.kind in ("csv", "json")}
    for figure in (c for c in checked if c.kind == "png"):
        if figure_data.get(figure.path.name) not in data_files:
            raise _refuse(
                "export-figure-data",
                f"{figure.path.name}: a figure is exported only "
                "with the data behind it, as a CSV or JSON file in the same request",
            )
    return checked
