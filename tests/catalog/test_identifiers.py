"""Resident ID numbers (GB 11643-1999) and unified social credit codes (GB 32100-2015)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.catalog.identifiers import (
    CREDIT_CODE_CHARSET,
    credit_code_check_char,
    credit_code_sql,
    detect_identifier_kind,
    is_credit_code,
    is_resident_id,
    resident_id_check_char,
    resident_id_sql,
)
from tests.catalog.idgen import credit_codes, mutated, no_deadline, resident_id, resident_ids

#: The worked example printed in GB 11643-1999 itself.
STANDARD_RESIDENT_ID = "11010519491231002X"
#: A code as published in the national enterprise credit publicity system,
#: an outside oracle for the weights and the MOD 31 table.
PUBLISHED_CREDIT_CODE = "914403001922038216"


def test_known_numbers_are_valid() -> None:
    assert resident_id_check_char(STANDARD_RESIDENT_ID[:17]) == "X"
    assert is_resident_id(STANDARD_RESIDENT_ID)
    assert credit_code_check_char(PUBLISHED_CREDIT_CODE[:17]) == "6"
    assert is_credit_code(PUBLISHED_CREDIT_CODE)


@pytest.mark.parametrize(
    "value",
    [
        "11010519491231002x",  # lower-case x is not the standard's check character
        "1101051949123100X",  # 17 characters
        "110105194912310021X",  # 19 characters
        "11010519490231002X",  # 31 February
        "110105000012310025",  # year 0000
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits
        "",
    ],
)
def test_malformed_resident_ids_are_invalid(value: str) -> None:
    assert not is_resident_id(value)


def test_impossible_birth_date_is_invalid_even_with_a_correct_check_char() -> None:
    body = "11010519490230002"  # 30 February
    assert not is_resident_id(body + resident_id_check_char(body))


@pytest.mark.parametrize(
    "value",
    [
        "914403001922038216"[:17] + "I",  # I is not in the character set
        "91AB03001922038216",  # division code must be digits
        "O14403001922038216",
        "91440300192203821",
    ],
)
def test_malformed_credit_codes_are_invalid(value: str) -> None:
    assert not is_credit_code(value)


def test_check_char_functions_refuse_malformed_bodies() -> None:
    with pytest.raises(ValueError):
        resident_id_check_char("1101051949123100")
    with pytest.raises(ValueError):
        credit_code_check_char("9144030019220382I")


@no_deadline
@given(resident_ids())
def test_generated_resident_ids_are_valid(value: str) -> None:
    assert is_resident_id(value)


@no_deadline
@given(resident_ids(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_changing_one_character_of_a_resident_id_breaks_it(value: str, i: int, c: str) -> None:
    if value[i] == c or (c == "X" and i < 17):
        return
    assert not is_resident_id(value[:i] + c + value[i + 1 :])


@no_deadline
@given(resident_ids(), st.integers(0, 15))
def test_swapping_adjacent_digits_of_a_resident_id_breaks_it(value: str, i: int) -> None:
    if value[i] == value[i + 1]:
        return
    assert not is_resident_id(value[:i] + value[i + 1] + value[i] + value[i + 2 :])


@no_deadline
@given(credit_codes())
def test_generated_credit_codes_are_valid(value: str) -> None:
    assert is_credit_code(value)


@no_deadline
@given(credit_codes(), st.integers(0, 17), st.sampled_from(CREDIT_CODE_CHARSET))
def test_changing_one_character_of_a_credit_code_breaks_it(value: str, i: int, c: str) -> None:
    if value[i] == c:
        return
    assert not is_credit_code(value[:i] + c + value[i + 1 :])


_duckdb = duckdb.connect()


def _sql_verdicts(values: list[str | None]) -> list[tuple[bool, bool]]:
    _duckdb.register("t", pa.table({"v": pa.array(values, pa.string()), "i": range(len(values))}))
    sql = f"SELECT {resident_id_sql('v')}, {credit_code_sql('v')} FROM t ORDER BY i"
    return [tuple(row) for row in _duckdb.execute(sql).fetchall()]


_noise = st.text(alphabet="0123456789XABCYZIO", min_size=16, max_size=19)
_any_value = st.one_of(
    resident_ids(),
    credit_codes(),
    mutated(resident_ids()),
    mutated(credit_codes()),
    _noise,
    st.none(),
)


@no_deadline
@given(st.lists(_any_value, max_size=40))
def test_sql_checks_agree_with_python(values: list[str | None]) -> None:
    expected = [
        (v is not None and is_resident_id(v), v is not None and is_credit_code(v)) for v in values
    ]
    assert _sql_verdicts(values) == expected


def _mix(n_valid: int, n_other: int) -> list[str | None]:
    """Valid numbers, then 18-digit counters (never valid: their birth date is 0000-00-00)."""
    valid = [resident_id("110105", date(1950, 1, 1) + timedelta(days=i), 1) for i in range(n_valid)]
    return valid + [f"{i:018d}" for i in range(n_other)] + [None] * 50


def test_detection_needs_ninety_percent_of_non_null_values() -> None:
    assert detect_identifier_kind(_mix(90, 10)) == "resident_id"
    assert detect_identifier_kind(_mix(89, 11)) is None


def test_detection_of_credit_codes_integers_and_nothing() -> None:
    codes = [PUBLISHED_CREDIT_CODE] * 10
    assert detect_identifier_kind(codes) == "credit_code"
    assert detect_identifier_kind(pa.array([int(STANDARD_RESIDENT_ID[:17] + "0")] * 3)) is None
    body = "11010519491231001"
    as_int = int(body + resident_id_check_char(body))  # a number without X kept as BIGINT
    assert detect_identifier_kind(pa.array([as_int] * 5, pa.int64())) == "resident_id"
    assert detect_identifier_kind([]) is None
    assert detect_identifier_kind([None, None]) is None
    assert detect_identifier_kind(["梁溪区", "13912345678", "2024-01-01"]) is None
