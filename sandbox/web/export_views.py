"""How an export request is shown: its files rendered, its check results as grids.

Read-outs only: what may move where comes from ``export_review.workflow``'s
TRANSITIONS, what passed comes from the checks themselves. Files are shown as
they are, escaped by the templates; a figure is the platform's drawing, which the
page loads through the authenticated ``/api/exports/{id}/figure/{name}``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from export_review.at_rest import read_export_file
from export_review.disclosure import TableCheck
from export_review.file_gate import EXTENSIONS
from export_review.models import ExportDecision, ExportFile, ExportRequest
from export_review.rerun import TableRerun
from export_review.workflow import REVIEWER_ACTIONS, TRANSITIONS, ExportAction
from sandbox.db.sealed import session_key_store

#: At most this many rows of a CSV table are rendered (the file itself is the whole table).
MAX_SHOWN_ROWS = 200
#: At most this many characters of a text, Markdown or JSON file are shown.
MAX_SHOWN_CHARS = 20_000


@dataclass(frozen=True)
class ShownFile:
    name: str
    kind: str
    size: int
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int = 0
    text: str = ""


def shown_file(session: Session, req: ExportRequest, f: ExportFile) -> ShownFile:
    """A submitted file as the page shows it: a table, or text (notebooks and scripts too),
    decrypted in memory."""
    kind = EXTENSIONS.get(Path(f.name).suffix.lower(), "other")
    if not Path(f.path).is_file():
        return ShownFile(f.name, "destroyed", f.size)  # its agreement ended (R16)
    if kind == "other":
        return ShownFile(f.name, kind, f.size)
    data = read_export_file(session_key_store(session), req.agreement_id, f)
    text = data.decode("utf-8-sig", errors="replace")
    if kind == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        header, body = (rows[0], rows[1:]) if rows else ([], [])
        return ShownFile(f.name, kind, f.size, header, body[:MAX_SHOWN_ROWS], len(body))
    if kind == "json":
        # Malformed JSON is shown as it is; the file gate says what is wrong with it.
        with contextlib.suppress(json.JSONDecodeError):
            text = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    return ShownFile(f.name, kind, f.size, text=text[:MAX_SHOWN_CHARS])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.6g}"
    return str(value)


def check_grid(check: TableCheck, which: str = "table") -> dict[str, Any]:
    """A checked table (or its mitigated version) as rows of {value, outcome} cells."""
    table = check.table if which == "table" else check.suppressed
    outcome = check.outcome
    rows = []
    for label in table.index:
        cells = []
        for column in table.columns:
            has = label in outcome.index and column in outcome.columns
            cells.append(
                {
                    "value": _cell(table.loc[label, column]),
                    "outcome": str(outcome.loc[label, column]) if has else "total",
                }
            )
        rows.append({"label": _cell(label), "cells": cells})
    return {
        "index": ", ".join(str(n) for n in table.index.names if n),
        "columns": [_cell(c) for c in table.columns],
        "rows": rows,
    }


def reviewer_moves(status: str) -> list[ExportAction]:
    """The reviewer's moves the workflow allows from ``status`` (approve first)."""
    moves = [a for (s, a) in TRANSITIONS if s == status and a in REVIEWER_ACTIONS]
    return sorted(moves, key=lambda a: a != ExportAction.approve)


def decisions_of(session: Session, req: ExportRequest) -> list[ExportDecision]:
    return list(
        session.scalars(
            select(ExportDecision)
            .where(ExportDecision.request_id == req.id)
            .order_by(ExportDecision.id)
        )
    )


def rerun_view(rerun: TableRerun) -> dict[str, Any]:
    """One re-run table check for the template: grids before and after mitigation."""
    if rerun.check is None:
        return {"r": rerun}
    return {
        "r": rerun,
        "summary": rerun.check.summary(),
        "grid": check_grid(rerun.check),
        "after": check_grid(rerun.check, "suppressed"),
    }
