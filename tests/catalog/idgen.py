"""Hypothesis strategies that build valid identifiers part by part, as the standards define them."""

from __future__ import annotations

from datetime import date

from hypothesis import settings
from hypothesis import strategies as st

from sandbox.catalog.identifiers import (
    CREDIT_CODE_CHARSET,
    credit_code_check_char,
    resident_id_check_char,
)


def resident_id(region: str, born: date, sequence: int) -> str:
    """Region (6 digits), birth date YYYYMMDD, sequence (3 digits), check character."""
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + resident_id_check_char(body)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.from_regex(r"[1-9][0-9]{5}", fullmatch=True))
    born = draw(st.dates(date(1900, 1, 1), date(2025, 12, 31)))
    return resident_id(region, born, draw(st.integers(0, 999)))


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid identifier with one character replaced (usually, not always, invalid)."""
    value = draw(valid)
    i = draw(st.integers(0, len(value) - 1))
    return value[:i] + draw(st.sampled_from("0123456789XY")) + value[i + 1 :]


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    """Authority and category characters, 6-digit division code, 9-character body, check char."""
    code = st.sampled_from(CREDIT_CODE_CHARSET)
    head = draw(code) + draw(code)
    division = draw(st.from_regex(r"[0-9]{6}", fullmatch=True))
    body = "".join(draw(code) for _ in range(9))
    first17 = head + division + body
    return first17 + credit_code_check_char(first17)


#: No per-example deadline: on a shared, loaded machine it would be a timing assertion.
no_deadline = settings(deadline=None)
