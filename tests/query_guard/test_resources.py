"""Star patterns DuckDB expands by itself, and the engine's limits: rows, memory, time.

Star patterns run directly on the built per-agreement databases to show that
DuckDB really expands them into columns the query never names (so the guard,
which sees no column there, must refuse them). The engine's limits are shown
on a dedicated database whose join key repeats 50 times. No test asserts how
fast anything is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from query_guard.engine import (
    CARDINALITY_RULE,
    QUERY_ERROR_RULE,
    TIMEOUT_RULE,
    PlannedCursor,
    Plans,
    check_cardinality,
    measure_timeout_overshoot,
    open_readonly,
    run_query,
)
from query_guard.guard import check_query
from query_guard.remembered import Remembered
from query_guard.rules.stars import RULE as STAR_RULE
from sandbox.errors import PolicyViolation, SandboxError

#: (star pattern, the same query with the columns DuckDB expands it to named, ordered?)
STAR_PATTERNS = [
    ("SELECT * LIKE '%patient%' FROM visits", "SELECT patient_id FROM visits", False),
    ("SELECT * ILIKE '%PATIENT%' FROM visits", "SELECT patient_id FROM visits", False),
    (
        "SELECT * NOT LIKE '%district%' FROM visits",
        "SELECT patient_id, visit_date, cost FROM visits",
        False,
    ),
    ("SELECT * SIMILAR TO '.*patient.*' FROM visits", "SELECT patient_id FROM visits", False),
    ("SELECT * GLOB '*patient*' FROM visits", "SELECT patient_id FROM visits", False),
    ("SELECT v.* LIKE '%patient%' FROM visits v", "SELECT patient_id FROM visits", False),
    ("SELECT COLUMNS('patient.*') FROM visits", "SELECT patient_id FROM visits", False),
    (
        "SELECT coalesce(*COLUMNS('patient.*')) AS x FROM visits",
        "SELECT patient_id AS x FROM visits",
        False,
    ),
    (
        "SELECT count(COLUMNS(*)) FROM visits",
        "SELECT count(patient_id) AS patient_id, count(visit_date) AS visit_date, "
        "count(district) AS district, count(cost) AS cost FROM visits",
        False,
    ),
    (
        "SELECT * FROM (SELECT * ILIKE '%patient%' FROM visits)",
        "SELECT patient_id FROM visits",
        False,
    ),
    (
        "WITH t AS (SELECT district, * ILIKE 'patient%' FROM visits) SELECT * FROM t",
        "SELECT district, patient_id FROM visits",
        False,
    ),
    (
        "SELECT cost FROM visits ORDER BY * LIKE 'patient%', cost",
        "SELECT cost FROM visits ORDER BY patient_id, cost",
        True,
    ),
    (
        "SELECT * AS x FROM visits",
        "SELECT patient_id AS x, visit_date AS x, district AS x, cost AS x FROM visits",
        False,
    ),
]


def _result(cursor: duckdb.DuckDBPyConnection, sql: str, ordered: bool) -> tuple[list, list]:
    relation = cursor.sql(sql)
    rows = relation.fetchall()
    return relation.columns, rows if ordered else sorted(rows, key=repr)


@pytest.mark.parametrize("built", ["aggregate", "record"], indirect=True)
@pytest.mark.parametrize(("pattern", "named", "ordered"), STAR_PATTERNS)
def test_star_patterns_are_refused_because_duckdb_expands_them(
    built, pattern: str, named: str, ordered: bool
) -> None:
    decision = check_query(pattern, built.ctx)
    assert decision.action == "block", decision.sql
    assert STAR_RULE in [r.rule for r in decision.reasons]
    # What DuckDB itself makes of the pattern on the agreement's database: the columns
    # the pattern matches, which the query text never names and the guard never saw.
    cursor = built.conn.cursor()
    try:
        assert _result(cursor, pattern, ordered) == _result(cursor, named, ordered)
    finally:
        cursor.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * EXCLUDE (cost) FROM visits",
        "SELECT * REPLACE (round(cost) AS cost) FROM visits",
        "SELECT * RENAME (cost AS price) FROM visits",
        "SELECT v.* EXCLUDE (patient_id), p.age FROM visits v "
        "JOIN people p ON v.patient_id = p.person_id",
    ],
)
def test_star_modifiers_run_as_the_named_columns_duckdb_would_give(record, sql: str) -> None:
    """sqlglot expands EXCLUDE, REPLACE and RENAME into named columns, as DuckDB does, so
    what runs holds no star for DuckDB to expand: they are allowed."""
    decision = check_query(sql, record.ctx)
    assert decision.sql is not None, decision.reasons
    assert not [s for s in sqlglot.parse_one(decision.sql, read="duckdb").find_all(exp.Star)]
    guarded = run_query(record.conn, decision.sql, timeout_s=30)
    cursor = record.conn.cursor()
    try:
        assert guarded.column_names == cursor.sql(sql).columns
    finally:
        cursor.close()


# --- the engine's limits, on a database whose join key repeats 50 times -------------------

ROWS = 1_000_000
PER_KEY = 50


@pytest.fixture(scope="module")
def repeated_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """visits: 1,000,000 rows, each patient_id 50 times; people: one row per patient."""
    path = tmp_path_factory.mktemp("resources") / "repeated.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        f"CREATE TABLE visits AS SELECT i // {PER_KEY} AS patient_id, md5(CAST(i AS VARCHAR)) "
        f"AS note, CAST((i % 997) * 1.5 AS DOUBLE) AS cost FROM range({ROWS}) r(i)"
    )
    con.execute(
        f"CREATE TABLE people AS SELECT i AS person_id, 20 + i % 60 AS age "
        f"FROM range({ROWS // PER_KEY}) r(i)"
    )
    con.close()
    return path


@pytest.fixture
def small_engine(repeated_keys: Path, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A hardened connection with 64 MB of memory and 64 MB of temporary disk."""
    conn = open_readonly(repeated_keys, memory_limit="64MB", threads=1, temp_dir=tmp_path)
    yield conn
    conn.close()


def _spilled(temp_dir: Path) -> list[str]:
    """Spilled data left behind (DuckDB keeps only an empty owner marker while open)."""
    return [
        f.name for f in temp_dir.iterdir() if f.suffix in {".tmp", ".block"} or f.stat().st_size
    ]


def _works(conn: duckdb.DuckDBPyConnection) -> bool:
    answer = run_query(conn, "SELECT count(*) AS n, sum(cost) AS s FROM visits", timeout_s=60)
    return answer.to_pylist() == [{"n": ROWS, "s": sum((i % 997) * 1.5 for i in range(ROWS))}]


def test_eight_self_joins_are_refused_before_they_run(small_engine) -> None:
    joins = " ".join(f"JOIN visits v{i} ON v0.patient_id = v{i}.patient_id" for i in range(1, 9))
    sql = f"SELECT count(*) FROM visits v0 {joins}"
    with pytest.raises(PolicyViolation) as err:
        # Run, this would take far longer than the timeout: refused with QG-017, not QG-013.
        run_query(small_engine, sql, timeout_s=120)
    assert err.value.rule == CARDINALITY_RULE and err.value.article
    assert "WITH query" in err.value.message
    with pytest.raises(PolicyViolation):
        check_cardinality(small_engine.cursor(), sql, limit=1_000_000)


def test_a_remembered_estimate_refuses_again_and_is_kept_per_text(small_engine) -> None:
    """The worker keeps each plan's estimate with its open file: asking again is refused
    again, from the estimate kept, and another text is estimated on its own."""
    joins = " ".join(f"JOIN visits v{i} ON v0.patient_id = v{i}.patient_id" for i in range(1, 9))
    runaway = f"SELECT count(*) FROM visits v0 {joins}"
    kept: Remembered[str, int | None] = Remembered(8)
    for _ in range(2):
        with pytest.raises(PolicyViolation) as err:
            run_query(small_engine, runaway, timeout_s=120, estimates=kept)
        assert err.value.rule == CARDINALITY_RULE
    assert run_query(small_engine, "SELECT 1 AS one", 60, estimates=kept).num_rows == 1
    assert kept.oldest_first() == [runaway, "SELECT 1 AS one"]


def test_the_plan_checked_is_the_one_the_statement_was_compiled_from(small_engine) -> None:
    """Aggregate mode hands the engine its checked query beside the compiled one: the
    estimate read is that query's, whose joins are the compiled statement's own."""
    joins = " ".join(f"JOIN visits v{i} ON v0.patient_id = v{i}.patient_id" for i in range(1, 9))
    with pytest.raises(PolicyViolation) as err:
        run_query(small_engine, "SELECT 1", 60, planned=f"SELECT count(*) FROM visits v0 {joins}")
    assert err.value.rule == CARDINALITY_RULE
    assert run_query(small_engine, "SELECT 1 AS one", 60, planned="SELECT 1").num_rows == 1


def test_a_join_on_a_key_unique_on_one_side_is_not_refused(small_engine) -> None:
    sql = (
        "SELECT count(*) AS n, sum(p.age) AS ages FROM visits v "
        "JOIN people p ON v.patient_id = p.person_id"
    )
    assert check_cardinality(small_engine.cursor(), sql) is not None
    answer = run_query(small_engine, sql, timeout_s=60).to_pylist()
    ages = sum(20 + i % 60 for i in range(ROWS // PER_KEY)) * PER_KEY
    assert answer == [{"n": ROWS, "ages": ages}]


def test_a_window_over_groups_is_not_taken_for_a_multiplying_join(small_engine) -> None:
    """DuckDB plans a partitioned window as a join back to the groups on IS NOT DISTINCT
    FROM and guesses its size as a product (here far past the limit); it keeps one row
    per row, so it is not refused (aggregate mode's spreads are computed this way)."""
    sql = (
        "SELECT count(*) AS n FROM (SELECT cost - avg(cost) OVER (PARTITION BY patient_id % 7) "
        "AS c FROM visits) WHERE c IS NOT NULL"
    )
    assert check_cardinality(small_engine.cursor(), sql, limit=ROWS) is not None
    assert run_query(small_engine, sql, timeout_s=60).to_pylist() == [{"n": ROWS}]


def test_a_query_over_the_memory_limit_fails_alone(small_engine, tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as err:
        run_query(small_engine, "SELECT count(DISTINCT note || note || note) FROM visits", 60)
    assert err.value.rule == QUERY_ERROR_RULE and "memory" in err.value.message
    assert isinstance(err.value.__cause__, duckdb.OutOfMemoryException)
    assert _works(small_engine)  # the same connection answers the next query
    assert _spilled(tmp_path) == []


def test_a_runaway_query_is_cancelled_and_leaves_nothing(small_engine, tmp_path: Path) -> None:
    runaway = (
        "SELECT count(*) FROM visits a JOIN visits b ON a.patient_id = b.patient_id "
        "JOIN visits c ON a.patient_id = c.patient_id WHERE (a.cost + b.cost + c.cost) < 0"
    )
    with pytest.raises(PolicyViolation) as err:
        run_query(small_engine, runaway, timeout_s=0.5, max_estimated_rows=None)
    assert err.value.rule == TIMEOUT_RULE
    assert _works(small_engine)
    assert _spilled(tmp_path) == []


def test_an_interrupt_before_the_query_starts_is_not_lost(small_engine) -> None:
    """DuckDB forgets an interrupt that arrives before execution starts; the engine repeats
    it. Uninterrupted, this query would finish and return a row instead of raising."""
    sql = (
        "SELECT count(*) FROM visits a JOIN visits b ON a.patient_id = b.patient_id "
        "WHERE (a.note || b.note) LIKE '%zz%zz%'"
    )
    for _ in range(3):
        with pytest.raises(PolicyViolation) as err:
            run_query(small_engine, sql, timeout_s=0, max_estimated_rows=None)
        assert err.value.rule == TIMEOUT_RULE
    assert _works(small_engine)


def test_overshoot_is_measured_for_the_benchmark(small_engine) -> None:
    runaway = (
        "SELECT count(*) FROM visits a JOIN visits b ON a.patient_id = b.patient_id "
        "JOIN visits c ON a.patient_id = c.patient_id"
    )
    # At least 1 by construction: the engine interrupts only once the limit has passed.
    assert measure_timeout_overshoot(small_engine, runaway, 0.2) >= 1.0
    assert _works(small_engine)


def _prepared(cursor: duckdb.DuckDBPyConnection) -> list[str]:
    return sorted(
        r[0] for r in cursor.execute("SELECT name FROM duckdb_prepared_statements()").fetchall()
    )


def test_a_pooled_cursor_plans_a_text_once_and_answers_as_a_fresh_one(small_engine) -> None:
    """The worker's cursors keep what they prepared: a text asked again runs its kept plan
    (one prepared statement, not two) with the same answer as on a cursor of its own, and
    a timed-out query leaves the cursor answering the next one."""
    plans = Plans(small_engine)
    sql = "SELECT patient_id % 3 AS k, count(*) AS n, sum(cost) AS s FROM visits GROUP BY 1"
    sql += " ORDER BY 1"
    fresh = run_query(small_engine, sql, timeout_s=60)
    assert [run_query(small_engine, sql, 60, plans=plans) for _ in range(2)] == [fresh, fresh]
    with plans.cursor() as pooled:
        assert len(_prepared(pooled.cursor)) == 1
    runaway = (
        "SELECT count(*) FROM visits a JOIN visits b ON a.patient_id = b.patient_id "
        "JOIN visits c ON a.patient_id = c.patient_id WHERE (a.cost + b.cost + c.cost) < 0"
    )
    with pytest.raises(PolicyViolation) as err:
        run_query(small_engine, runaway, 0.5, max_estimated_rows=None, plans=plans)
    assert err.value.rule == TIMEOUT_RULE
    assert run_query(small_engine, sql, 60, plans=plans) == fresh
    plans.close()


def test_a_cursor_keeps_its_most_recent_plans_only(small_engine) -> None:
    cursor = PlannedCursor(small_engine.cursor(), keeps=2)
    for sql in ("SELECT 1 AS a", "SELECT 2 AS a", "SELECT 1 AS a", "SELECT 3 AS a"):
        cursor.relation(sql).fetchall()
    kept = [
        r[0]
        for r in cursor.cursor.execute(
            "SELECT statement FROM duckdb_prepared_statements()"
        ).fetchall()
    ]
    assert sorted(kept) == ["SELECT 1 AS a", "SELECT 3 AS a"]
