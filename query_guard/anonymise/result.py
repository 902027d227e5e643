"""What a researcher is told about an anonymised result, taken off its hidden columns.

The compiled root block (:mod:`.emit`) returns, beside its own columns, one
boolean column per aggregated output saying which of its values were
suppressed, and one saying whether any group was. They leave as the Arrow
schema's metadata, never as data, and never say which rule fired or how close
a value came to it.
"""

from __future__ import annotations

import json

import pyarrow as pa

SUPPRESSED_PREFIX = "__qg_suppressed_"
DROPPED = "__qg_dropped"
#: Arrow schema metadata key describing suppression and perturbation of a result.
METADATA_KEY = b"query_guard.disclosure"


def split_suppression(table: pa.Table) -> pa.Table:
    """Take the hidden suppression columns off a result and describe them in its metadata."""
    names = table.column_names
    if DROPPED not in names:
        return table
    cells = []
    visible = [n for n in names if not n.startswith("__qg_")]
    for name in names:
        if name.startswith(SUPPRESSED_PREFIX):
            column = visible[int(name[len(SUPPRESSED_PREFIX) :])]
            rows = [i for i, v in enumerate(table.column(name).to_pylist()) if v]
            cells += [[r, column] for r in rows]
    dropped = any(table.column(DROPPED).to_pylist())
    info = describe(cells=cells, groups_suppressed=dropped, empty=table.num_rows == 0)
    out = table.select(visible)
    meta = dict(out.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(info, ensure_ascii=False).encode()
    return out.replace_schema_metadata(meta)


def describe(*, cells: list, groups_suppressed: bool, empty: bool) -> dict[str, object]:
    """What the researcher is told about a result: never which rule fired or how close."""
    notes = ["values are perturbed (sticky noise, at most ±3 standard deviations per layer)"]
    if empty:
        notes.append(
            "no group had enough contributors to be shown (this is also the answer when "
            "nothing matched)"
        )
    elif groups_suppressed:
        notes.append("some groups were suppressed for disclosure")
    if cells:
        notes.append(f"{len(cells)} value(s) were suppressed for disclosure (shown as empty)")
    return {
        "perturbed": True,
        "suppressed_cells": cells,
        "groups_suppressed": groups_suppressed or empty,
        "notes": notes,
    }
