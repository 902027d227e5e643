"""The file gate: what kinds of file may be submitted for export, and what they may hold.

Allowed are CSV tables, plain text or Markdown reports, JSON, notebooks without
outputs and scripts (.py, .sql, .R), all of them text checked as text (a renamed
binary is refused). No image is accepted: figures are drawn by the platform from
their table (``export_review.chart``), so reviewers check numbers, not pixels. Files
are bounded in size and rows; a CSV with an identifier column (by catalogue name,
or by values that are valid 18-digit resident ID numbers or 18-character unified
social credit codes) is refused, as is any text with such a value (Rizhao Art.10,
29; Putuo Art.32). A notebook that still holds outputs is refused rather than
stripped by the platform: what leaves is the researcher's file byte for byte (a CSV file
with the UTF-8 byte-order mark added, so Excel opens it as UTF-8), so the author has seen
exactly what is released, and outputs can hold data.
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
from sandbox.contracts.names import fold
from sandbox.errors import PolicyViolation

FileKind = Literal["csv", "text", "json", "notebook", "code"]
EXTENSIONS: dict[str, FileKind] = {
    ".csv": "csv",
    ".txt": "text",
    ".md": "text",
    ".json": "json",
    ".ipynb": "notebook",
    ".py": "code",
    ".sql": "code",
    ".r": "code",
}
IMAGES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".pdf", ".webp", ".tif", ".tiff"})
_ALLOWED = "CSV, TXT/Markdown, JSON, notebooks (.ipynb) and scripts (.py, .sql, .R)"
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
        text = data.decode("utf-8-sig")  # a BOM is no part of the first column's name
    except UnicodeDecodeError as exc:
        raise _refuse(
            "export-file-type",
            f"{path.name}: is not UTF-8 text; allowed are {_ALLOWED}",
        ) from exc
    if any(ch in text for ch in "\x00\x1b\x7f"):
        raise _refuse(
            "export-file-type",
            f"{path.name}: holds control characters, so it is not plain text; allowed are "
            f"{_ALLOWED}",
        )
    return text


def has_identifier_value(values: Iterable[str]) -> bool:
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
    # Compared as look-alikes (sandbox.contracts.names.fold): ＩＤ is id, 身份证号 in NFD too.
    protected = {fold(n) for n in identifier_names}
    named = sorted(h.strip() for h in rows[0] if fold(h.strip()) in protected)
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
    if kind is None and path.suffix.lower() in IMAGES:
        raise _refuse(
            "export-file-type",
            f"{path.name}: images made in the workspace are not exported, since a reviewer "
            "cannot check what their pixels hold; a figure leaves as a chart specification "
            "and its table, drawn by the platform (output form figure)",
        )
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
    text = _text(path, path.read_bytes())
    if has_identifier_value(text.splitlines()):
        raise _refuse(
            "export-file-identifier",
            f"{path.name}: contains a value that is a resident "
            "ID number or a social credit code; remove identifiers",
            _IDENTIFIERS,
        )
    if kind in ("json", "notebook"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _refuse(
                "export-file-type",
                f"{path.name}: is named {path.suffix} but does not parse as JSON",
            ) from exc
        if kind == "notebook":
            _check_notebook(path, parsed)
    if kind == "csv":
        return CheckedFile(path, kind, _check_csv(path, text, identifier_names, limits))
    return CheckedFile(path, kind)


def _check_notebook(path: Path, notebook: object) -> None:
    """A Jupyter notebook (nbformat 4) whose cells hold code and text only: no outputs, no
    execution counts, no attachments (each could carry data the reviewer does not see)."""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if (
        not isinstance(notebook, dict)
        or notebook.get("nbformat") != 4
        or not isinstance(cells, list)
    ):
        raise _refuse("export-file-type", f"{path.name}: is not a Jupyter notebook (nbformat 4)")
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise _refuse("export-file-type", f"{path.name}: cell {number} is not a notebook cell")
        held = [
            what
            for what, present in (
                ("outputs", bool(cell.get("outputs"))),
                ("an execution count", cell.get("execution_count") is not None),
                ("attachments", bool(cell.get("attachments"))),
            )
            if present
        ]
        if held:
            raise _refuse(
                "export-notebook-outputs",
                f"{path.name}: cell {number} still holds {' and '.join(held)}; code leaves "
                "without outputs, which can hold data: clear them (Jupyter: Edit > Clear "
                "Outputs of All Cells, or jupyter nbconvert --clear-output --inplace) and "
                "submit again",
            )


def identifier_names(catalog: Mapping[str, CatalogEntry], agreement: Agreement) -> set[str]:
    """Column names that are identifiers (or protected entities) in the agreement's datasets,
    and their headers in the providers' files (身份证号码 for a column named 身份证号)."""
    names: set[str] = set()
    for name in agreement.datasets:
        entry = catalog[name]
        protected = {*entry.identifier_columns, *([entry.entity] if entry.entity else [])}
        names.update(protected)
        names.update(c.file_header for c in entry.columns if c.name in protected)
    return names


def check_files(
    paths: Sequence[Path],
    *,
    agreement: Agreement,
    catalog: Mapping[str, CatalogEntry],
    limits: GateLimits | None = None,
) -> list[CheckedFile]:
    """Check every file of an export request, or raise on the first that is refused."""
    limits = limits or GateLimits(max_rows=agreement.disclosure.max_result_rows)
    names = identifier_names(catalog, agreement)
    return [check_file(Path(p), identifier_names=names, limits=limits) for p in paths]
