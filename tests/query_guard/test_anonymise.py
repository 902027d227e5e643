"""Aggregate mode's anonymisation on real DuckDB files: sticky noise, one answer in every
agreement, every kind of entity counted, dominant contributions flattened, and
suppression said aloud (issue 11, items 1-3 and 6)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
import yaml
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from query_guard.anonymise.result import METADATA_KEY
from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly, run_query
from query_guard.guard import GuardContext, check_query
from sandbox.contracts import load_agreement, load_catalog

SECRET = b"s" * 32


def _world(root: Path, rows: dict[str, list], columns: list[dict], **agreement) -> GuardContext:
    (root / "catalog").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), root / "catalog" / "pay.parquet")
    entry = {
        "name": "pay", "title": "Payments", "provider": "p", "domain": "finance",
        "summary": "s", "open_class": "conditional", "conditions": "c", "format": "parquet",
        "update_frequency": "monthly", "contact": "c@example.gov", "entity": "person_id",
        "source": "pay.parquet", "columns": columns,
    }  # fmt: skip
    (root / "catalog" / "pay.yaml").write_text(yaml.safe_dump(entry), encoding="utf-8")
    contract = {
        "id": "AGR-AN-1", "title": "t", "provider": "p", "researchers": ["r"], "purpose": "p",
        "mode": "aggregate", "valid_from": "2026-01-01", "valid_until": "2027-12-31",
        "datasets": {"pay": {"columns": [c["name"] for c in columns if c["name"] != "person_id"]}},
        "disclosure": {"min_group_size": 5},
    } | agreement  # fmt: skip
    (root / "agreement.yaml").write_text(yaml.safe_dump(contract), encoding="utf-8")
    return GuardContext(load_agreement(root / "agreement.yaml"), load_catalog(root / "catalog"))


COLUMNS = [
    {"name": "person_id", "type": "VARCHAR", "sensitivity": "identifier"},
    {"name": "district", "type": "VARCHAR"},
    {"name": "amount", "type": "DOUBLE"},
]


def _payments(dominant: float | None = None) -> dict[str, list]:
    rng = random.Random(3)
    rows: dict[str, list] = {"person_id": [], "district": [], "amount": []}
    for i in range(400):
        for _ in range(rng.randint(1, 3)):
            rows["person_id"].append(f"P{i}")
            rows["district"].append(f"D{i % 4}")
            rows["amount"].append(round(rng.uniform(10, 100), 2))
    if dominant is not None:
        rows["person_id"].append("BIG")
        rows["district"].append("D0")
        rows["amount"].append(dominant)
    return rows


def _run(ctx: GuardContext, db: Path, sql: str, secret: bytes = SECRET) -> pa.Table:
    decision = check_query(sql, ctx)
    assert decision.sql is not None, decision.reasons
    conn = open_readonly(db, memory_limit="256MB", threads=1, noise_secret=secret)
    try:
        return run_query(conn, decision.sql, 30)
    finally:
        conn.close()


def _build(ctx: GuardContext, root: Path, name: str, key: bytes, secret: bytes = SECRET) -> Path:
    return build_agreement_database(
        ctx.agreement, ctx.catalog, out_path=root / name, key=key, noise_secret=secret
    )


def _values(table: pa.Table) -> list:
    return [tuple(r.values()) for r in table.to_pylist()]


def _numbers(table: pa.Table) -> list[float]:
    """Every numeric value of a result, row by row (for approximate comparison)."""
    return [v for row in _values(table) for v in row if isinstance(v, int | float)]


def test_noise_is_sticky_and_keyed_by_meaning_not_text(tmp_path: Path) -> None:
    ctx = _world(tmp_path, _payments(), COLUMNS)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    plain = "SELECT district, sum(amount) AS s FROM pay WHERE amount > 20 GROUP BY 1 ORDER BY 1"
    first = _values(_run(ctx, db, plain))
    assert [v for _, v in first] == pytest.approx(_numbers(_run(ctx, db, plain)), rel=1e-9)
    for same in (
        "SELECT district, sum(amount + 0) AS s FROM pay WHERE amount > 20 GROUP BY 1 ORDER BY 1",
        "SELECT district, 2 * sum(amount / 2) AS s FROM pay WHERE 20 < amount "
        "GROUP BY 1 ORDER BY 1",
        "SELECT district, sum(amount) AS s FROM pay WHERE amount > 20.0 GROUP BY 1 ORDER BY 1",
        # a table alias, names in other cases or quoted, a key named or written twice, a
        # condition written twice: none may give the cell fresh noise to average away
        "SELECT p.district, sum(p.amount) AS s FROM pay AS p WHERE p.amount > 20 "
        "GROUP BY 1 ORDER BY 1",
        'SELECT "district", SUM(Amount) AS s FROM "pay" WHERE AMOUNT > 20 GROUP BY 1 ORDER BY 1',
        "SELECT district, sum(amount) AS s FROM pay WHERE amount > 20 "
        "GROUP BY district, district ORDER BY 1",
        "SELECT district, sum(amount) AS s FROM pay WHERE amount > 20 AND amount > 20 "
        "GROUP BY 1 ORDER BY 1",
    ):
        assert [v for _, v in _values(_run(ctx, db, same))] == pytest.approx(
            [v for _, v in first], rel=1e-9
        ), same
    raw = (
        "SELECT district, sum(amount) FROM read_parquet(?) WHERE amount > 20 GROUP BY 1 ORDER BY 1"
    )
    import duckdb

    exact = duckdb.connect().execute(raw, [str(tmp_path / "catalog" / "pay.parquet")]).fetchall()
    got = [v for _, v in first]
    assert got != [v for _, v in exact]  # perturbed ...
    # ... within the documented bound: 3 sd per layer (condition, group key, column), in
    # units of the top contributions (at most 3 payments of 100), plus flattening.
    assert got == pytest.approx([v for _, v in exact], abs=3 * 3 * 300 + 300)


def test_what_a_per_entity_query_names_its_columns_gives_no_fresh_noise(
    tmp_path: Path,
) -> None:
    """The columns of a per-entity WITH query are seeded by what defines them: renaming
    them (or the WITH query, or the entity) would otherwise give as many independent
    answers as names, to average away."""
    agreed = {"pay": {"columns": ["person_id", "district", "amount"]}}
    ctx = _world(tmp_path, _payments(), COLUMNS, datasets=agreed)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    per_entity = (
        "WITH e AS (SELECT person_id, district, sum(amount) AS t FROM pay "
        "GROUP BY person_id, district) SELECT district, avg(t) AS a FROM e GROUP BY 1 ORDER BY 1"
    )
    first = _values(_run(ctx, db, per_entity))
    for renamed in (
        per_entity.replace("AS t", "AS u").replace("avg(t)", "avg(u)"),
        per_entity.replace("WITH e", "WITH f").replace("FROM e", "FROM f"),
        per_entity.replace(
            "SELECT person_id, district,", "SELECT person_id AS pid, district AS d,"
        ).replace("SELECT district, avg", "SELECT d, avg"),
    ):
        assert _values(_run(ctx, db, renamed)) == first, renamed


def test_the_same_cell_answers_alike_in_every_agreement(tmp_path: Path) -> None:
    ctx = _world(tmp_path, _payments(), COLUMNS)
    one = _build(ctx, tmp_path, "one.duckdb", b"a" * 32)
    two = _build(ctx, tmp_path, "two.duckdb", b"b" * 32)  # other pseudonyms
    sql = "SELECT district, count(*) AS n, avg(amount) AS m FROM pay GROUP BY 1 ORDER BY 1"
    assert _numbers(_run(ctx, one, sql)) == pytest.approx(_numbers(_run(ctx, two, sql)), rel=1e-9)
    other_secret = _numbers(_run(ctx, two, sql, secret=b"t" * 32))
    assert other_secret != pytest.approx(_numbers(_run(ctx, two, sql)), rel=1e-6)


def test_a_dominant_contribution_is_flattened(tmp_path: Path) -> None:
    ctx = _world(tmp_path, _payments(dominant=1_000_000.0), COLUMNS)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    [(value,)] = _values(_run(ctx, db, "SELECT sum(amount) FROM pay WHERE district = 'D0'"))
    others = sum(
        a for p, d, a in zip(*_payments(dominant=1_000_000.0).values(), strict=True)
        if d == "D0" and p != "BIG"
    )  # fmt: skip
    assert abs(value - others) < 0.05 * others  # the million is brought to the top group


def test_every_kind_of_entity_must_be_enough(tmp_path: Path) -> None:
    """Many people of one company: enough people, but one company; the cell is withheld."""
    rows: dict[str, list] = {"person_id": [], "company": [], "district": [], "amount": []}
    for i in range(120):
        rows["person_id"].append(f"P{i}")
        rows["company"].append("ONLY" if i % 4 == 0 else f"C{i}")
        rows["district"].append(f"D{i % 4}")
        rows["amount"].append(50.0)
    columns = [*COLUMNS[:1], {"name": "company", "type": "VARCHAR", "sensitivity": "identifier"},
               *COLUMNS[1:]]  # fmt: skip
    ctx = _world(tmp_path, rows, columns)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    table = _run(ctx, db, "SELECT district, count(*) AS n FROM pay GROUP BY 1 ORDER BY 1")
    assert table.column("district").to_pylist() == ["D1", "D2", "D3"]
    info = json.loads(table.schema.metadata[METADATA_KEY])
    assert info["groups_suppressed"] is True and info["perturbed"] is True


def test_a_result_with_every_group_suppressed_says_so(tmp_path: Path) -> None:
    ctx = _world(tmp_path, _payments(dominant=5.0), COLUMNS)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    table = _run(ctx, db, "SELECT count(*) FROM pay WHERE amount = 5")  # BIG alone
    info = json.loads(table.schema.metadata[METADATA_KEY])
    assert table.num_rows == 0 and info["groups_suppressed"] is True
    assert any("no group had enough contributors" in note for note in info["notes"])


def test_aggregates_over_anonymised_groups_return_their_row(tmp_path: Path) -> None:
    """The guard used to add HAVING COUNT(*) >= k over the four district rows (no row)."""
    ctx = _world(tmp_path, _payments(), COLUMNS)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    table = _run(
        ctx,
        db,
        "WITH d AS (SELECT district, avg(amount) AS m FROM pay GROUP BY district) "
        "SELECT avg(m) AS mean, stddev(m) AS spread FROM d",
    )
    [(mean, spread)] = _values(table)
    assert 40 < mean < 70 and spread >= 0


def test_medians_come_from_several_entities_and_are_perturbed(tmp_path: Path) -> None:
    ctx = _world(tmp_path, _payments(), COLUMNS)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    sql = (
        "SELECT district, median(amount) AS m, percentile_cont(0.9) WITHIN GROUP "
        "(ORDER BY amount) AS p90 FROM pay GROUP BY 1 ORDER BY 1"
    )
    got = _values(_run(ctx, db, sql))
    rows = _payments()
    for district, median, p90 in got:
        amounts = [
            a for d, a in zip(rows["district"], rows["amount"], strict=True) if d == district
        ]
        assert median not in amounts and p90 not in amounts  # never one payment as it was
        # Of each person's mean payment (uniform on 10..100, one to three payments each):
        assert 40 < median < 70 and 70 < p90 < 100


#: Each fails on plain DuckDB exactly because one person (BIG) paid a million: a cast out
#: of range, an integer overflow, a date outside its domain (DuckDB's numeric functions
#: answer NaN outside theirs), an integer division by zero.
ERROR_ORACLES = {
    "cast": "SELECT CAST(amount AS TINYINT) AS b, count(*) FROM pay GROUP BY b",
    "overflow": "SELECT CAST(amount AS INTEGER) * 10000 AS b, count(*) FROM pay GROUP BY b",
    "domain": "SELECT make_date(2024, CAST(amount / 100000 AS INTEGER) + 3, 1) AS b, count(*) "
    "FROM pay GROUP BY b",
    "division": "SELECT 1 // CAST(amount / 1000000 AS INTEGER) - 1 AS b, count(*) FROM pay "
    "GROUP BY b",
}


@pytest.mark.parametrize("kind", sorted(ERROR_ORACLES))
def test_no_error_oracle_on_one_entity(kind: str, tmp_path: Path) -> None:
    """The query fails on the raw data because of one person; guarded, it is refused or
    it runs, and runs the same way whether or not that person is in the data."""
    import duckdb

    sql = ERROR_ORACLES[kind]
    outcomes = []
    for dominant in (1_000_000.0, None):
        root = tmp_path / str(dominant)
        ctx = _world(root, _payments(dominant=dominant), COLUMNS)
        db = _build(ctx, root, "a.duckdb", b"k" * 32)
        if dominant is not None:
            with pytest.raises(duckdb.Error):  # the oracle is real on the unguarded engine
                duckdb.connect(str(db), read_only=True).execute(sql).fetchall()
        decision = check_query(sql, ctx)
        if decision.sql is None:
            outcomes.append(("refused", [r.rule for r in decision.reasons]))
            continue
        table = _run(ctx, db, sql)  # never raises
        outcomes.append(("ran", table.column_names))
    assert outcomes[0] == outcomes[1]


def test_spreads_agree_with_the_raw_data(tmp_path: Path) -> None:
    """stddev and variance come from anonymised sums of squares, sums and counts."""
    import duckdb

    ctx = _world(tmp_path, _payments(), COLUMNS)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    sql = "SELECT district, stddev(amount), var_pop(amount) FROM pay GROUP BY 1 ORDER BY 1"
    raw = duckdb.connect().execute(
        sql.replace("FROM pay", "FROM read_parquet(?)"), [str(tmp_path / "catalog" / "pay.parquet")]
    )
    for got, exact in zip(_values(_run(ctx, db, sql)), raw.fetchall(), strict=True):
        assert got[1] == pytest.approx(exact[1], rel=0.2) and got[2] == pytest.approx(
            exact[2], rel=0.4
        )


def _big_payments(people: int = 6000) -> dict[str, list]:
    rng = random.Random(9)
    rows: dict[str, list] = {"person_id": [], "district": [], "amount": []}
    for i in range(people):
        for _ in range(rng.randint(1, 3)):
            rows["person_id"].append(f"P{i}")
            rows["district"].append(f"D{i % 3}")
            rows["amount"].append(round(rng.uniform(10, 100), 2))
    return rows


def test_large_groups_take_the_fast_path_within_the_bound(tmp_path: Path) -> None:
    """Groups of thousands of rows, where no one entity can bring 1% of a value, are
    settled by the bound (one pass over their rows): right within the noise bound and
    sticky. A condition that leaves out no one sends them the exact way, which drops it:
    every such condition gives one and the same answer, never fresh noise."""
    import duckdb

    ctx = _world(tmp_path, _big_payments(), COLUMNS)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    sql = "SELECT district, count(*), sum(amount) FROM pay GROUP BY 1 ORDER BY 1"
    compiled = check_query(sql, ctx).sql or ""
    assert "__qg_fast_noise" in compiled.lower()
    got = _values(_run(ctx, db, sql))
    parquet = str(tmp_path / "catalog" / "pay.parquet")
    raw = duckdb.connect().execute(sql.replace("FROM pay", "FROM read_parquet(?)"), [parquet])
    for (district, n, total), exact in zip(got, raw.fetchall(), strict=True):
        # 2 layers (group key, column), at most 3 sd each, scaled to 3 rows or 3 x 100.
        assert district == exact[0] and abs(n - exact[1]) <= 2 * 3 * 3 + 0.5
        assert abs(total - exact[2]) <= 2 * 3 * 300 and total != exact[2]
    assert _values(_run(ctx, db, sql)) == got
    no_effect = [sql.replace("GROUP BY", f"WHERE amount >= {a} GROUP BY") for a in (1, 2)]
    assert _settled_by_the_bound(ctx, db, no_effect[0]) == 0
    answers = [_values(_run(ctx, db, text)) for text in no_effect]
    assert answers[0] == answers[1] and [r[0] for r in answers[0]] == [r[0] for r in got]


def test_the_way_a_bucket_goes_does_not_tell_whether_one_entity_meets_a_condition(
    tmp_path: Path,
) -> None:
    """The fast path answers in one pass, the exact way groups by entity: slower, and the
    time shows. A condition that leaves out only a planted entity's rows, or no row at all,
    sends the buckets the same way."""
    settled = []
    for amount in (5.0, 90.0):  # left out by the condition (alone of everyone), or kept
        rows = _big_payments()
        for column, value in (("person_id", "LONE"), ("district", "D0"), ("amount", amount)):
            rows[column].append(value)
        ctx = _world(tmp_path / str(amount), rows, COLUMNS)
        db = _build(ctx, tmp_path, f"{amount}.duckdb", b"k" * 32)
        sql = "SELECT district, count(*) FROM pay WHERE amount >= 8 GROUP BY 1 ORDER BY 1"
        settled.append(_settled_by_the_bound(ctx, db, sql))
    assert settled[0] == settled[1]


def test_whether_a_lone_entity_meets_the_condition_does_not_show(tmp_path: Path) -> None:
    """A bucket holding one entity is suppressed whether or not its rows meet the WHERE:
    low-effect detection drops a condition that leaves out one entity, also where the
    fast path counts what each condition leaves out in scans of its own."""
    answers = []
    for amount in (10.0, 90.0):  # left out by the condition, or kept by it
        rows = _big_payments()
        for column, value in (("person_id", "LONE"), ("district", "DX"), ("amount", amount)):
            rows[column].append(value)
        ctx = _world(tmp_path / str(amount), rows, COLUMNS)
        db = _build(ctx, tmp_path, f"{amount}.duckdb", b"k" * 32)
        sql = "SELECT district, count(*) FROM pay WHERE amount >= 50 GROUP BY 1 ORDER BY 1"
        assert "__qg_fast_noise" in (check_query(sql, ctx).sql or "").lower()
        table = _run(ctx, db, sql)  # (the values differ: each file is a dataset version
        districts = [row[0] for row in _values(table)]  # with noise keys of its own)
        answers.append((districts, table.schema.metadata[METADATA_KEY]))
    assert answers[0] == answers[1] and "DX" not in answers[0][0]
    assert json.loads(answers[0][1])["groups_suppressed"] is True


def _settled_by_the_bound(ctx: GuardContext, db: Path, sql: str) -> int:
    """How many buckets of ``sql`` the fast path answered (its own WITH entry)."""
    compiled = sqlglot.parse_one(check_query(sql, ctx).sql or "", read="duckdb")
    counted = sqlglot.select("count(*)").from_(exp.to_identifier("__qg_fast0", quoted=True))
    counted.set("with_", compiled.args["with_"])
    conn = open_readonly(db, memory_limit="256MB", threads=1, noise_secret=SECRET)
    try:
        return conn.execute(counted.sql("duckdb")).fetchone()[0]
    finally:
        conn.close()


def test_spreads_of_large_groups_take_the_fast_path(tmp_path: Path) -> None:
    """A spread whose groups are large enough that no entity can bring 1% of its squares
    about the mean is computed in one pass (Σx² − (Σx)²/n) and agrees with the raw data;
    one whose mean dwarfs its spread goes the exact way and agrees too."""
    import duckdb

    sql = "SELECT district, stddev(amount) FROM pay GROUP BY 1 ORDER BY 1"
    for shift, fast_buckets in ((0, 3), (1e9, 0)):
        rows = _big_payments()
        rows["amount"] = [a * 2 - 110 + shift for a in rows["amount"]]  # -90 .. 90 + shift
        ctx = _world(tmp_path / str(shift), rows, COLUMNS)
        db = _build(ctx, tmp_path, f"{shift}.duckdb", b"k" * 32)
        assert _settled_by_the_bound(ctx, db, sql) == fast_buckets
        parquet = str(tmp_path / str(shift) / "catalog" / "pay.parquet")
        raw = duckdb.connect().execute(sql.replace("FROM pay", "FROM read_parquet(?)"), [parquet])
        for got, exact in zip(_values(_run(ctx, db, sql)), raw.fetchall(), strict=True):
            assert got[0] == exact[0] and got[1] == pytest.approx(exact[1], rel=0.05)


@given(
    st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=300),
    st.lists(st.booleans(), min_size=300, max_size=300),
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=300, max_size=300),
)
def test_the_fast_paths_bounds_err_on_the_safe_side(entities, contributes, values) -> None:
    """With M the most rows of one entity: contributing rows / M never exceeds the
    contributing entities, no entity's contribution exceeds M times the largest row, and
    no entity's squares about the mean exceed M·(max|x| + |mean|)²."""
    rows = list(zip(entities, contributes, values, strict=False))
    most = max(entities.count(e) for e in set(entities))
    contributing = [(e, v) for e, c, v in rows if c]
    assert len(contributing) / most <= len({e for e, _ in contributing})
    largest = max((abs(v) for _, _, v in rows), default=0.0)
    mean = sum(v for _, _, v in rows) / len(rows)
    for entity in set(entities):
        assert abs(sum(v for e, _, v in rows if e == entity)) <= most * largest * (1 + 1e-12)
        squares = sum((v - mean) ** 2 for e, _, v in rows if e == entity)
        assert squares <= most * (largest + abs(mean)) ** 2 * (1 + 1e-12)


def test_keys_and_conditions_that_cannot_fail_run_without_try(tmp_path: Path) -> None:
    """TRY costs DuckDB its fast paths and zone maps; where the typed input makes a failure
    impossible it is left off, and kept everywhere else (the error oracle tests above)."""
    ctx = _world(tmp_path, _payments(), COLUMNS)
    plain = check_query(
        "SELECT floor(amount / 10) * 10 AS b, count(*) FROM pay "
        "WHERE district = 'D1' AND amount >= 20 GROUP BY b",
        ctx,
    ).sql
    rows = plain.split("AS NOT MATERIALIZED (")[1].split(" FROM ")[0]
    assert "TRY" not in rows.upper()
    cast = check_query("SELECT CAST(amount AS TINYINT) AS b, count(*) FROM pay GROUP BY b", ctx)
    assert "TRY(" in cast.sql.split("AS NOT MATERIALIZED (")[1].split(" FROM ")[0].upper()
