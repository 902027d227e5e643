"""Names and literals of the SQL that aggregate mode compiles (:mod:`.emit`, :mod:`.fast`)."""

from __future__ import annotations

import hashlib

from query_guard.anonymise.derive import Block
from query_guard.anonymise.noise import Static
from query_guard.context import GuardContext


def q(name: str) -> str:
    """A quoted identifier, written directly: the compiler quotes about a hundred names
    per query, and asking sqlglot to generate each cost a fifth of the decision.
    ``tests/query_guard/test_names.py`` checks it against sqlglot's DuckDB output."""
    return '"' + name.replace('"', '""') + '"'


def digest(text: str) -> str:
    """A layer's name in the SQL: a digest of its canonical form, so that no literal of a
    condition (an identifier, say) is copied into the SQL that the record keeps."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def static(block: Block, ctx: GuardContext, base: str) -> str:
    """What the anonymising functions are told about one value: public, no key."""
    d = ctx.agreement.disclosure
    return Static(
        datasets=block.keyed_by,
        base=digest(base),
        conditions=tuple(digest(c) for c in block.conditions),
        keys=tuple(digest(k) for k in block.key_texts),
        k=d.min_group_size,
        noise_sd=d.noise_sd,
        threshold_sd=d.threshold_sd,
        outliers=tuple(d.outliers),  # type: ignore[arg-type]
        top_group=tuple(d.top_group),  # type: ignore[arg-type]
        dominance=tuple(d.dominance),  # type: ignore[arg-type]
    ).to_json()


def literal(text: str) -> str:
    """A string literal (DuckDB's strings have no escapes but the doubled quote)."""
    return "'" + text.replace("'", "''") + "'"


def flag(i: int) -> str:
    """The column saying whether condition ``i`` holds for a row."""
    return q(f"__qg_c{i}")


def drop(i: int) -> str:
    """The column saying whether condition ``i`` is dropped in a bucket (low effect)."""
    return q(f"__qg_d{i}")
