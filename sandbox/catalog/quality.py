"""The quality report on an upload, sent back to its provider (R14: Wuxi Art.13).

Opened data should have no wrong, empty or duplicate values where avoidable,
so the report counts them. It also enforces R13 (Rizhao Art.10; Putuo Art.32):
a column of resident ID numbers or credit codes must be declared
``sensitivity: identifier``, because only identifier columns are pseudonymised
before a researcher sees them. Any other declaration would hand out the
numbers themselves, so the upload is refused.

All counting is one DuckDB pass over the table, so millions of rows are cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NoReturn

import duckdb
import pyarrow as pa

from sandbox.catalog.identifiers import (
    DETECTION_THRESHOLD,
    IDENTIFIER_KINDS,
    IDENTIFIER_SQL,
    IdentifierKind,
    kind_from_counts,
)
from sandbox.contracts import CatalogEntry, Column, Sensitivity
from sandbox.contracts.names import fold
from sandbox.errors import PolicyViolation

UNDECLARED_IDENTIFIER_ARTICLE = "Rizhao Art.10; Putuo Art.32 (R13)"
_KIND_NAMES: dict[IdentifierKind, str] = {
    "resident_id": "resident ID numbers (GB 11643-1999)",
    "credit_code": "unified social credit codes (GB 32100-2015)",
}


@dataclass(frozen=True)
class ColumnQuality:
    """What the report found in one column."""

    name: str
    nulls: int
    #: For declared identifier columns: the kind most values are valid as, if any.
    #: (Any other column whose values are identifiers is refused, not reported.)
    identifier_kind: IdentifierKind | None = None
    #: For identifier columns of a recognised kind: values that fail its check.
    invalid_identifiers: int | None = None
    #: For columns with declared ``bounds``: values outside them.
    out_of_bounds: int | None = None
    #: For columns with a declared public ``values`` list: values not in it.
    not_in_values: int | None = None


@dataclass(frozen=True)
class QualityReport:
    """Counts of empty, duplicate and wrong values in one upload; JSON-serialisable."""

    dataset: str
    rows: int
    duplicate_rows: int
    columns: list[ColumnQuality]

    def problems(self) -> list[str]:
        """Plain-language findings for the provider; no data values, only columns and counts."""
        found = []
        if self.duplicate_rows:
            found.append(f"{self.duplicate_rows} rows duplicate an earlier row exactly")
        for c in self.columns:
            if c.nulls:
                found.append(f"{c.name}: {c.nulls} empty values")
            if c.invalid_identifiers and c.identifier_kind:
                found.append(
                    f"{c.name}: {c.invalid_identifiers} values are not valid "
                    f"{_KIND_NAMES[c.identifier_kind]}"
                )
            if c.out_of_bounds:
                found.append(f"{c.name}: {c.out_of_bounds} values outside the declared bounds")
            if c.not_in_values:
                found.append(f"{c.name}: {c.not_in_values} values not in the declared values list")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": self.problems()}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _may_hold_identifiers(arrow_type: pa.DataType) -> bool:
    """Text, or integers wide enough for 18 digits (an ID number without X can be a BIGINT)."""
    return any(
        check(arrow_type)
        for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_int64)
    )


def _is_numeric(arrow_type: pa.DataType) -> bool:
    return any(
        check(arrow_type)
        for check in (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    )


def _text_literal(value: str | int) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _count_sql(table: pa.Table, columns: list[Column]) -> list[tuple[str, str]]:
    """(key, SQL aggregate) pairs for everything the report counts, in one SELECT."""
    declared = {c.name: c for c in columns}
    parts = [("rows", "count(*)")]
    for field in table.schema:
        col, q = declared.get(field.name), _quote(field.name)
        parts.append((f"{field.name}:nulls", f"count(*) - count({q})"))
        if _may_hold_identifiers(field.type):
            for kind in IDENTIFIER_KINDS:
                valid = IDENTIFIER_SQL[kind](f"CAST({q} AS VARCHAR)")
                parts.append((f"{field.name}:{kind}", f"count(*) FILTER (WHERE {valid})"))
        if col is not None and col.bounds is not None and _is_numeric(field.type):
            low, high = col.bounds
            outside = f"{q} < {low} OR {q} > {high}"
            parts.append((f"{field.name}:bounds", f"count(*) FILTER (WHERE {outside})"))
        if col is not None and col.values is not None:
            allowed = ", ".join(_text_literal(v) for v in col.values)
            outside = f"CAST({q} AS VARCHAR) NOT IN ({allowed})"
            parts.append((f"{field.name}:values", f"count(*) FILTER (WHERE {outside})"))
    return parts


def _count(table: pa.Table, columns: list[Column], *, duplicates: bool) -> dict[str, int]:
    """Run the counts; ``distinct_rows`` too when ``duplicates`` (a second, costlier pass)."""
    parts = _count_sql(table, columns)
    select = ", ".join(sql for _, sql in parts)
    with duckdb.connect() as con:
        con.register("upload", table)
        row = con.execute(f"SELECT {select} FROM upload").fetchone()
        counts = dict(zip([key for key, _ in parts], row or (), strict=True))
        if duplicates:
            distinct = con.execute(
                "SELECT count(*) FROM (SELECT DISTINCT * FROM upload)"
            ).fetchone()
            counts["distinct_rows"] = distinct[0] if distinct else 0
    return counts


def _non_null_and_valid(counts: dict[str, int], name: str) -> tuple[int, dict[IdentifierKind, int]]:
    """A column's non-null count and how many of its values are valid as each identifier kind."""
    valid = {k: counts.get(f"{name}:{k}", 0) for k in IDENTIFIER_KINDS}
    return counts["rows"] - counts[f"{name}:nulls"], valid


def _refuse_undeclared(
    entry: CatalogEntry, column: Column, kind: IdentifierKind, valid: int, n: int
) -> NoReturn:
    raise PolicyViolation(
        "undeclared-identifier",
        UNDECLARED_IDENTIFIER_ARTICLE,
        f"{entry.name}.{column.name}: {valid} of {n} non-null values are valid "
        f"{_KIND_NAMES[kind]}, but the column is declared sensitivity: "
        f"{column.sensitivity.value}; declare it sensitivity: identifier (it will be "
        "pseudonymised and never returned) or remove the column from the upload",
    )


def quality_report(table: pa.Table, entry: CatalogEntry) -> QualityReport:
    """Count empty, duplicate and wrong values; refuse identifiers not declared as such (R13).

    ``table`` is an upload already cast to the entry (see ``reading.read_table``).
    """
    counts = _count(table, entry.columns, duplicates=True)
    columns = []
    for column in entry.columns:
        name = column.name
        non_null, valid = _non_null_and_valid(counts, name)
        if column.sensitivity == Sensitivity.identifier:
            # The kind most values are valid as, even below the detection threshold:
            # a resident ID column full of typing errors is what R14 wants reported.
            kind: IdentifierKind | None = max(IDENTIFIER_KINDS, key=valid.__getitem__)
            if not valid[kind]:
                kind = None  # some other key, e.g. a hospital's own patient number
            invalid = non_null - valid[kind] if kind else None
        else:
            kind, invalid = kind_from_counts(non_null, valid), None
            if kind is not None:
                _refuse_undeclared(entry, column, kind, valid[kind], non_null)
        columns.append(
            ColumnQuality(
                name=name,
                nulls=counts[f"{name}:nulls"],
                identifier_kind=kind,
                invalid_identifiers=invalid,
                out_of_bounds=counts.get(f"{name}:bounds"),
                not_in_values=counts.get(f"{name}:values"),
            )
        )
    return QualityReport(
        dataset=entry.name,
        rows=counts["rows"],
        duplicate_rows=counts["rows"] - counts["distinct_rows"],
        columns=columns,
    )


#: Parts of a column's name that say it identifies a person or an organisation, compared
#: after folding (``sandbox.contracts.names.fold``): a name, a phone number, an address or
#: an ID number identifies as surely as a checksummed one, which only values can show.
IDENTIFIER_NAME_PARTS = (
    "身份证", "身份号码", "证件号", "信用代码", "姓名", "手机", "电话", "联系方式", "住址",
    "地址", "resident_id", "id_card", "id_number", "credit_code", "full_name", "phone",
    "mobile", "address",
)  # fmt: skip
#: A mainland mobile number as registers hold it: 11 digits, 13x to 19x.
_MOBILE = "'1[3-9][0-9]{9}'"


def _named_like_identifier(name: str) -> bool:
    folded = fold(name)
    return any(part in folded for part in IDENTIFIER_NAME_PARTS)


def _mobile_columns(table: pa.Table, counts: dict[str, int]) -> set[str]:
    """Columns whose values are mostly mobile phone numbers (checked as text)."""
    text = [f.name for f in table.schema if _may_hold_identifiers(f.type)]
    if not text:
        return set()
    found = ", ".join(
        f"count(*) FILTER (WHERE regexp_full_match(CAST({_quote(n)} AS VARCHAR), {_MOBILE}))"
        for n in text
    )
    with duckdb.connect() as con:
        con.register("upload", table)
        row = con.execute(f"SELECT {found} FROM upload").fetchone() or ()
    return {
        name
        for name, mobile in zip(text, row, strict=True)
        if mobile and mobile >= DETECTION_THRESHOLD * (counts["rows"] - counts[f"{name}:nulls"])
    }


def suggest_sensitivity(table: pa.Table) -> dict[str, Sensitivity]:
    """Columns proposed as identifiers on the provider's publish page, before an entry exists:
    by value (resident ID numbers by their GB 11643 check, credit codes by GB 32100, mobile
    numbers) and by name (身份证号, 统一社会信用代码, 姓名, 手机号, 住址 ...). Columns with no
    proposal are left out, since only the provider can judge them.
    """
    counts = _count(table, [], duplicates=False)
    mobile = _mobile_columns(table, counts)
    return {
        name: Sensitivity.identifier
        for name in table.column_names
        if kind_from_counts(*_non_null_and_valid(counts, name)) is not None
        or name in mobile
        or _named_like_identifier(name)
    }
