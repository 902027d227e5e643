"""The compiler's hand-written quoting says what sqlglot's DuckDB generator says, and
DuckDB reads back exactly the text that was quoted."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from query_guard.anonymise.names import literal, q

TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)


CON = duckdb.connect()


@settings(deadline=None)  # DuckDB's answer time is not the property
@given(TEXT)
def test_identifiers_and_literals_match_sqlglot_and_read_back(text: str) -> None:
    assert q(text) == exp.to_identifier(text, quoted=True).sql("duckdb")
    assert literal(text) == exp.Literal.string(text).sql("duckdb")
    con = CON.cursor()
    assert con.execute(f"SELECT {literal(text)}").fetchone()[0] == text
    if text:
        column = con.execute(f"SELECT 1 AS {q(text)}").description[0][0]
        assert column == text
