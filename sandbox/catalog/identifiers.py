"""Detect the two national identifiers in data (R13: Rizhao Art.10, 29; Putuo Art.32).

Natural persons are keyed by the 18-digit resident ID number (GB 11643-1999)
and organisations by the 18-character unified social credit code (GB 32100-2015).
Both end in a check character, so a column of real identifiers is recognisable
with near certainty: a random 18-character string passes the resident ID check
with probability below 1 in 11, the credit code check with 1 in 31.

Each check exists twice on purpose: as plain Python (the readable reference,
used for single values) and as a DuckDB SQL expression (used to count millions
of values in one vectorised pass). The tests assert the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Literal

import duckdb
import pyarrow as pa

IdentifierKind = Literal["resident_id", "credit_code"]
IDENTIFIER_KINDS: tuple[IdentifierKind, ...] = ("resident_id", "credit_code")

#: Share of a column's non-null values that must be valid identifiers for the
#: column to count as an identifier column. Not 100%, because real registers
#: carry typing errors, and a column with a few bad numbers still identifies
#: people; far above chance (at most 1/11 of random strings pass a check), so
#: codes, phone numbers or amounts are not mistaken for identifiers.
DETECTION_THRESHOLD = 0.9

_RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2^(17-i) mod 11
_RESIDENT_CHECK = "10X98765432"  # indexed by (weighted sum mod 11)

CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^i mod 31
_CREDIT_VALUE = {c: i for i, c in enumerate(CREDIT_CODE_CHARSET)}


def resident_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character (0-9 or X) for 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("a resident ID number's body is exactly 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, _RESIDENT_WEIGHTS, strict=True))
    return _RESIDENT_CHECK[total % 11]


def credit_code_check_char(first17: str) -> str:
    """The MOD 31 check character of GB 32100-2015 for 17 code characters."""
    if len(first17) != 17 or any(c not in _CREDIT_VALUE for c in first17):
        raise ValueError(f"a credit code's body is 17 characters of {CREDIT_CODE_CHARSET}")
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def _valid_birth_date(yyyymmdd: str) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return 1800 <= born.year <= 2099


def is_resident_id(s: str) -> bool:
    """True for an 18-digit resident ID number with a real birth date and a correct check char."""
    return (
        isinstance(s, str)
        and len(s) == 18
        and s[:17].isascii()
        and s[:17].isdigit()
        and _valid_birth_date(s[6:14])
        and resident_id_check_char(s[:17]) == s[17]
    )


def is_credit_code(s: str) -> bool:
    """True for an 18-character unified social credit code with a correct check char.

    Characters 3-8 are the registering authority's administrative division
    code, which is always six digits.
    """
    return (
        isinstance(s, str)
        and len(s) == 18
        and all(c in _CREDIT_VALUE for c in s)
        and s[2:8].isdigit()
        and credit_code_check_char(s[:17]) == s[17]
    )


def resident_id_sql(expr: str) -> str:
    """A DuckDB boolean expression: is the VARCHAR ``expr`` a valid resident ID number?

    The weighted sum is unrolled into plain arithmetic because DuckDB runs that
    several times faster than a list lambda.
    """
    terms = " + ".join(
        f"(ascii(substr({expr}, {i + 1}, 1)) - 48) * {w}" for i, w in enumerate(_RESIDENT_WEIGHTS)
    )
    return (
        f"coalesce(CASE WHEN regexp_full_match({expr}, '[0-9]{{6}}(18|19|20)[0-9]{{9}}[0-9X]') "
        f"THEN try_strptime(substr({expr}, 7, 8), '%Y%m%d') IS NOT NULL "
        f"AND substr('{_RESIDENT_CHECK}', (({terms}) % 11)::BIGINT + 1, 1) = substr({expr}, 18, 1) "
        "ELSE false END, false)"
    )


def credit_code_sql(expr: str) -> str:
    """A DuckDB boolean expression: is the VARCHAR ``expr`` a valid unified social credit code?"""
    terms = " + ".join(
        f"(strpos('{CREDIT_CODE_CHARSET}', substr({expr}, {i + 1}, 1)) - 1) * {w}"
        for i, w in enumerate(_CREDIT_WEIGHTS)
    )
    chars = f"[{CREDIT_CODE_CHARSET}]"
    return (
        f"coalesce(CASE WHEN regexp_full_match({expr}, '{chars}{{2}}[0-9]{{6}}{chars}{{10}}') "
        f"THEN substr('{CREDIT_CODE_CHARSET}', ((31 - ({terms}) % 31) % 31)::BIGINT + 1, 1) "
        f"= substr({expr}, 18, 1) ELSE false END, false)"
    )


IDENTIFIER_SQL: dict[IdentifierKind, Callable[[str], str]] = {
    "resident_id": resident_id_sql,
    "credit_code": credit_code_sql,
}


def kind_from_counts(non_null: int, valid: dict[IdentifierKind, int]) -> IdentifierKind | None:
    """The identifier kind at least DETECTION_THRESHOLD of the non-null values are valid as."""
    if non_null == 0:
        return None
    kind = max(IDENTIFIER_KINDS, key=lambda k: valid.get(k, 0))
    return kind if valid.get(kind, 0) >= DETECTION_THRESHOLD * non_null else None


def detect_identifier_kind(
    values: Iterable[object] | pa.Array | pa.ChunkedArray,
) -> IdentifierKind | None:
    """Which identifier a sample of values holds, if any: ``resident_id``, ``credit_code`` or None.

    Values are compared as text (an ID number kept as an integer still counts);
    nulls are ignored. Counting runs vectorised in DuckDB: about a second for a
    million values, several times faster than the Python checks.
    """
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        values = pa.array([None if v is None else str(v) for v in values], pa.string())
    text = "CAST(v AS VARCHAR)"
    counts = ", ".join(
        f"count(*) FILTER (WHERE {IDENTIFIER_SQL[k](text)})" for k in IDENTIFIER_KINDS
    )
    with duckdb.connect() as con:
        con.register("sample", pa.table({"v": values}))
        row = con.execute(f"SELECT count(v), {counts} FROM sample").fetchone()
    assert row is not None
    non_null, *valid = row
    return kind_from_counts(non_null, dict(zip(IDENTIFIER_KINDS, valid, strict=True)))
