"""Compile an agreement into its own DuckDB database: restriction in the data.

The database holds only the agreement's datasets, columns and rows (the row
filter is applied here, at build time, never AND-ed into a user's query), with
identifier columns replaced by keyed pseudonyms. What is not in this file cannot
leak, whatever the guard misses (THREAT_MODEL boundary 1; Rizhao Art.29,
Putuo Art.32). Datasets suspended after a rights complaint are left out
(Shanghai Art.22).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

import duckdb
from sqlglot import exp

from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry, Sensitivity
from sandbox.contracts.validation import parse_row_filter, validate_agreement
from sandbox.errors import ContractError

#: Hex digits kept of each HMAC-SHA256 pseudonym (80 bits: no collisions at
#: any realistic number of entities).
PSEUDONYM_HEX_CHARS = 20
_BLOCK = 64  # SHA-256 block size, for HMAC's inner and outer pads


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _string(value: str) -> str:
    return exp.Literal.string(value).sql("duckdb")


def hmac_sql(column_sql: str, key: bytes) -> str:
    """HMAC-SHA256 of a column's text as a DuckDB expression (RFC 2104, computed in-engine).

    The key only appears in the build statement, never in the stored database.
    """
    if not key or len(key) > _BLOCK:
        raise ValueError("pseudonym key must be 1 to 64 bytes")
    padded = key.ljust(_BLOCK, b"\0")
    ipad = bytes(b ^ 0x36 for b in padded).hex()
    opad = bytes(b ^ 0x5C for b in padded).hex()
    inner = f"unhex(sha256(unhex('{ipad}') || encode(CAST({column_sql} AS VARCHAR))))"
    return f"left(sha256(unhex('{opad}') || {inner}), {PSEUDONYM_HEX_CHARS})"


def pseudonym(value: str, key: bytes) -> str:
    """The pseudonym the build gives ``value`` (for tests, and for the provider to re-identify)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]


def built_columns(agreement: Agreement, entry: CatalogEntry) -> list[str]:
    """Columns stored for a dataset: the agreed ones, plus in aggregate mode the entity
    (pseudonymised), which the guard needs to count distinct entities per group."""
    columns = list(agreement.datasets[entry.name].columns)
    if agreement.mode == "aggregate" and entry.entity and entry.entity not in columns:
        columns.append(entry.entity)
    return columns


def is_pseudonymised(agreement: Agreement, entry: CatalogEntry, column: str) -> bool:
    """Identifier columns always; a hidden entity column too, since it is not agreed."""
    if entry.column(column).sensitivity == Sensitivity.identifier:
        return True
    return column not in agreement.datasets[entry.name].columns


def _reader_sql(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return f"read_parquet({_string(str(path))})"
    if suffix in (".csv", ".txt"):
        return f"read_csv({_string(str(path))}, header = true, all_varchar = true)"
    raise ContractError(f"{path}: unsupported source format; use Parquet or CSV",
                        rule="build-source")


def _dataset_sql(agreement: Agreement, entry: CatalogEntry, path: Path, key: bytes) -> str:
    typed = ", ".join(
        f"CAST({_ident(c.name)} AS {c.type}) AS {_ident(c.name)}" for c in entry.columns
    )
    outputs = []
    for name in built_columns(agreement, entry):
        col = _ident(name)
        value = hmac_sql(col, key) if is_pseudonymised(agreement, entry, name) else col
        outputs.append(f"{value} AS {col}")
    scope = agreement.datasets[entry.name]
    where = ""
    if scope.row_filter:
        where = " WHERE " + parse_row_filter(scope.row_filter, entry).sql("duckdb")
    return (
        f"CREATE TABLE {_ident(entry.name)} AS SELECT {', '.join(outputs)} "
        f"FROM (SELECT {typed} FROM {_reader_sql(path)}) AS src{where}"
    )


def _source(entry: CatalogEntry, sources: Mapping[str, Path] | None) -> Path:
    path = (sources or {}).get(entry.name) or entry.source_path()
    if path is None:
        raise ContractError(f"dataset {entry.name!r} has no source file", rule="build-source")
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"dataset {entry.name!r}: source {path} not found",
                            rule="build-source")
    return path


def build_agreement_database(
    agreement: Agreement,
    catalog: Mapping[str, CatalogEntry],
    *,
    out_path: str | Path,
    key: bytes,
    sources: Mapping[str, Path] | None = None,
    suspended: frozenset[str] = frozenset(),
) -> Path:
    """Build the agreement's database at ``out_path`` atomically and return the path.

    It is written to a temporary file next to ``out_path`` and renamed into
    place only when complete, so an interrupted build leaves nothing behind.
    """
    validate_agreement(agreement, dict(catalog))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.building")
    try:
        con = duckdb.connect(str(tmp), config={"autoinstall_known_extensions": False,
                                               "autoload_known_extensions": False,
                                               "python_enable_replacements": False})
        try:
            for name in agreement.datasets:
                if name in suspended:
                    continue
                entry = catalog[name]
                con.execute(_dataset_sql(agreement, entry, _source(entry, sources), key))
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.chmod(tmp, 0o640)
        os.replace(tmp, out_path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return out_path
