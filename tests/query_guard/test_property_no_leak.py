"""Property: whatever query the grammar makes, no executed result holds a protected value.

Queries are built from allowed and disallowed pieces (hidden columns,
identifiers in every position, the hidden DP contribution rank, disclosive
aggregates, the raw source file, qualified names, filtered-out rows, small
groups). Any query naming the contribution rank must be blocked. Each one the
guard lets through is run on the hardened engine, and its result must hold no
canary, no raw resident ID, and in aggregate mode no group below the minimum
size.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query_guard.compile import CONTRIBUTION_RANK, CONTRIBUTOR_SEED
from query_guard.engine import run_query
from query_guard.guard import check_query
from sandbox.errors import SandboxError
from tests.query_guard.data import FILTERED_CANARY, HIDDEN_CANARY, SMALL_DISTRICT, resident_id
from tests.query_guard.leaks import assert_no_leak

ITEMS = [
    "district",
    "count(*)",
    "sum(cost)",
    "avg(cost)",
    "cost",
    "patient_id",
    "count(DISTINCT patient_id)",
    "max(cost)",
    "min(visit_date)",
    "diagnosis",
    "v",
    "*",
    "v.*",
    "COLUMNS(*)",
    "list(patient_id)",
    "string_agg(district, ',')",
    "substr(patient_id, 1, 18)",
    "patient_id || ''",
    "CAST(patient_id AS VARCHAR)",
    "year(visit_date)",
    "date_trunc('month', visit_date)",
    "upper(district)",
    "CASE WHEN cost > 500 THEN 'hi' ELSE 'lo' END",
    "count(*) OVER ()",
    "row_number() OVER (ORDER BY cost)",
    "secret_note",
    CONTRIBUTION_RANK,
    f"sum({CONTRIBUTION_RANK})",
    CONTRIBUTOR_SEED,
]
SOURCES = [
    "visits v",
    "visits AS v",
    "(SELECT * FROM visits) v",
    "memory.main.visits v",
    "read_parquet('{raw}') v",
    "'{raw}' v",
    "(SELECT patient_id AS district, cost, visit_date, patient_id FROM visits) v",
    "visits v JOIN people p ON v.patient_id = p.person_id",
    "visits v, people p",
    "(SELECT * FROM visits WHERE district = '" + SMALL_DISTRICT + "') v",
]
WHERES = [
    "",
    f"WHERE patient_id = '{resident_id(3)}'",
    f"WHERE district = '{SMALL_DISTRICT}'",
    f"WHERE district = '{FILTERED_CANARY}'",
    "WHERE visit_date < DATE '2024-01-01'",
    "WHERE cost > 100",
    "WHERE district IN (SELECT district FROM visits)",
    f"WHERE diagnosis = '{HIDDEN_CANARY}'",
]
GROUPS = ["", "GROUP BY district", "GROUP BY ALL", "GROUP BY patient_id", "GROUP BY 1"]
TAILS = ["", "ORDER BY 1", "LIMIT 5", "LIMIT 100000"]


@st.composite
def queries(draw: st.DrawFn, raw: str) -> str:
    items = draw(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=3, unique=True))
    source = draw(st.sampled_from(SOURCES)).format(raw=raw)
    parts = [
        f"SELECT {', '.join(items)} FROM {source}",
        draw(st.sampled_from(WHERES)),
        draw(st.sampled_from(GROUPS)),
        draw(st.sampled_from(TAILS)),
    ]
    return " ".join(p for p in parts if p)


def _check(built, sql: str) -> None:
    decision = check_query(sql, built.ctx)
    if CONTRIBUTION_RANK in sql or CONTRIBUTOR_SEED in sql:  # hidden columns are never readable
        assert decision.action == "block", decision.sql
    if decision.action == "block":
        assert decision.sql is None and decision.reasons
        return
    try:
        result = run_query(built.conn, decision.sql, timeout_s=30)
    except SandboxError as err:
        text = str(err)
        assert HIDDEN_CANARY not in text and not any(i in text for i in built.raw_ids)
        return
    assert result.num_rows <= built.ctx.agreement.disclosure.max_result_rows
    assert_no_leak(result, built.raw_ids, built.ctx.mode)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_canary_in_aggregate_mode(aggregate, data) -> None:
    raw = str(aggregate.root / "catalog" / "visits.parquet")
    _check(aggregate, data.draw(queries(raw)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_canary_in_record_mode(record, data) -> None:
    raw = str(record.root / "catalog" / "visits.parquet")
    _check(record, data.draw(queries(raw)))


def test_the_grammar_reaches_allowed_queries(aggregate, record) -> None:
    """Guard against a vacuous property: legitimate draws are allowed and run."""
    for built, sql in [
        (aggregate, "SELECT district, count(*) FROM visits v GROUP BY district"),
        (record, "SELECT district, cost FROM visits v WHERE cost > 100"),
    ]:
        decision = check_query(sql, built.ctx)
        assert decision.action == "rewrite"
        assert run_query(built.conn, decision.sql, 30).num_rows > 0
