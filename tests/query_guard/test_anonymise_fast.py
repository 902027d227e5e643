"""Aggregate mode's fast path where rows may repeat an entity: inner joins on the entity
and per-entity WITH queries grouped by more than the entity (issue 11, items 1 and 7).
The bound M on one entity's rows must hold for the rows the block aggregates, or a bucket
of two people would pass for a bucket of a hundred."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from query_guard.anonymise.derive import QUANTILE, Base, Block
from query_guard.anonymise.emit import _quantile_ctes
from query_guard.guard import GuardContext, check_query
from sandbox.contracts import load_agreement, load_catalog
from tests.query_guard.test_anonymise import (
    COLUMNS,
    _big_payments,
    _build,
    _run,
    _settled_by_the_bound,
    _values,
    _world,
)

AGREED = {"pay": {"columns": ["person_id", "district", "amount"]}}


def _joined_world(root: Path) -> GuardContext:
    """``pay`` (1-3 rows per person) and ``persons`` (one row each), joined on the person."""
    payments = _big_payments()
    _world(root, payments, COLUMNS, datasets=AGREED)  # pay, its catalogue and agreement
    people = sorted(set(payments["person_id"]))
    sexes = ["F" if int(p[1:]) % 2 else "M" for p in people]
    pq.write_table(
        pa.table({"person_id": people, "sex": sexes}), root / "catalog" / "persons.parquet"
    )
    entry = yaml.safe_load((root / "catalog" / "pay.yaml").read_text(encoding="utf-8"))
    entry |= {
        "name": "persons", "title": "Persons", "source": "persons.parquet",
        "columns": [COLUMNS[0], {"name": "sex", "type": "VARCHAR"}],
    }  # fmt: skip
    (root / "catalog" / "persons.yaml").write_text(yaml.safe_dump(entry), encoding="utf-8")
    contract = yaml.safe_load((root / "agreement.yaml").read_text(encoding="utf-8"))
    contract["datasets"]["persons"] = {"columns": ["person_id", "sex"]}
    contract["joins"] = [["pay.person_id", "persons.person_id"]]
    (root / "agreement.yaml").write_text(yaml.safe_dump(contract), encoding="utf-8")
    return GuardContext(load_agreement(root / "agreement.yaml"), load_catalog(root / "catalog"))


def _raw_join(root: Path, sql: str) -> list[tuple]:
    """``sql``, which joins ``pay a`` with ``persons p``, on the raw files."""
    catalog = root / "catalog"
    files = [str(catalog / "pay.parquet"), str(catalog / "persons.parquet")]
    raw = sql.replace("FROM pay", "FROM read_parquet(?)").replace(
        "JOIN persons", "JOIN read_parquet(?)"
    )
    return duckdb.connect().execute(raw, files).fetchall()


def test_inner_joins_on_the_entity_take_the_fast_path_within_the_bound(tmp_path: Path) -> None:
    """Joined on the person, a person has (rows in pay) x (rows in persons) rows, at most
    3 x 1: large groups are settled in one pass and agree with the raw join within the
    noise that bound allows."""
    ctx = _joined_world(tmp_path)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    sql = (
        "SELECT p.sex, count(*), sum(a.amount) FROM pay a JOIN persons p "
        "ON a.person_id = p.person_id GROUP BY 1 ORDER BY 1"
    )
    assert _settled_by_the_bound(ctx, db, sql) == 2
    raw = _raw_join(tmp_path, sql)
    for (sex, n, total), exact in zip(_values(_run(ctx, db, sql)), raw, strict=True):
        # 2 layers (group key, column), at most 3 sd each, scaled to 3 x 1 rows of <= 100.
        assert sex == exact[0] and abs(n - exact[1]) <= 2 * 3 * 3 + 0.5
        assert abs(total - exact[2]) <= 2 * 3 * 300


def test_a_joins_buckets_left_to_the_exact_way_read_the_joined_rows(tmp_path: Path) -> None:
    """The exact way reads a join's rows only when some bucket goes that way (a gate on
    each table, so that DuckDB does not join everything for nothing): here every bucket
    is too small for the bound, and each still gets its rows, right within the exact
    way's noise."""
    ctx = _joined_world(tmp_path)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    sql = (
        "SELECT floor(a.amount) AS b, count(*) FROM pay a JOIN persons p "
        "ON a.person_id = p.person_id WHERE p.sex = 'F' GROUP BY 1 ORDER BY 1"
    )
    assert _settled_by_the_bound(ctx, db, sql) == 0
    exact = dict(_raw_join(tmp_path, sql))
    shown = dict(_values(_run(ctx, db, sql)))
    assert len(shown) >= 0.8 * len(exact)
    # 3 layers (condition, key, column) of at most 3 sd, scaled to at most 3 rows, and
    # at most 2 flattened contributions of 3 rows.
    assert all(abs(n - exact[b]) <= 3 * 3 * 3 + 2 * 3 + 0.5 for b, n in shown.items())


def test_distinct_entities_of_large_groups_are_counted_in_one_pass(tmp_path: Path) -> None:
    """count(DISTINCT person) counts the contributors themselves, each bringing one: large
    groups are settled in one pass, with noise scaled to one entity, not to M rows."""
    ctx = _world(tmp_path, _big_payments(), COLUMNS, datasets=AGREED)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    sql = "SELECT district, count(DISTINCT person_id) FROM pay GROUP BY 1 ORDER BY 1"
    assert _settled_by_the_bound(ctx, db, sql) == 3
    raw = duckdb.connect().execute(
        sql.replace("FROM pay", "FROM read_parquet(?)"), [str(tmp_path / "catalog" / "pay.parquet")]
    )
    for (district, n), exact in zip(_values(_run(ctx, db, sql)), raw.fetchall(), strict=True):
        assert district == exact[0] and abs(n - exact[1]) <= 2 * 3 * 1 + 0.5  # 2 layers


def test_a_per_entity_query_grouped_by_more_than_the_entity_counts_entities(
    tmp_path: Path,
) -> None:
    """Grouped by the person and a payment, two people give a hundred rows: the fast path
    took each row for one person and showed the count; it is suppressed."""
    rows: dict[str, list] = {"person_id": [], "district": [], "amount": []}
    for person in ("A", "B"):
        for i in range(60):
            rows["person_id"].append(person)
            rows["district"].append("D0")
            rows["amount"].append(float(i))
    ctx = _world(tmp_path, rows, COLUMNS, datasets=AGREED)
    db = _build(ctx, tmp_path, "a.duckdb", b"k" * 32)
    sql = (
        "WITH t AS (SELECT person_id, amount, count(*) AS n FROM pay "
        "GROUP BY person_id, amount) SELECT count(*), sum(n) FROM t"
    )
    assert "__qg_fast_noise" in (check_query(sql, ctx).sql or "").lower()
    assert _run(ctx, db, sql).num_rows == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=40),
    st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=40),
    st.lists(st.integers(min_value=0, max_value=3), min_size=40, max_size=40),
)
def test_the_row_bounds_of_joins_and_groupings_err_on_the_safe_side(left, right, keys) -> None:
    """On DuckDB itself: an inner join on the entity gives one entity at most the product
    of its tables' bounds, and grouping by the entity and another key at most its rows."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE l AS SELECT unnest(?) AS e, unnest(?) AS k", [left, keys[: len(left)]]
    )
    con.execute("CREATE TABLE r AS SELECT unnest(?) AS e", [right])
    most = "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {} GROUP BY e)"
    joined = con.execute(most.format("l JOIN r USING (e)")).fetchone()[0]
    bound_l, bound_r = (con.execute(most.format(t)).fetchone()[0] for t in "lr")
    assert joined <= bound_l * bound_r
    grouped = con.execute(most.format("(SELECT e, k FROM l GROUP BY e, k)")).fetchone()[0]
    assert grouped <= bound_l


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=30),
    st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9, 0.99, 1.0]),
)
def test_a_quantiles_window_is_read_without_sorting_as_the_sorted_means_have_it(
    means, fraction
) -> None:
    """The window about a quantile's rank, read from a pivot and the nearest means either
    side of it, is the one the sorted list of entity means has (ties included)."""
    block = Block(
        select=exp.Select(), datasets={}, kinds=[], keys=[exp.column("g")], key_texts=[],
        atoms=[], conditions=[], bases=[Base(QUANTILE, None, "q", fraction=fraction)],
    )  # fmt: skip
    con = duckdb.connect()
    con.execute(
        'CREATE TABLE ent AS SELECT 1 AS "__qg_g0", unnest(range(?)) AS "__qg_e0", '
        'unnest(?)::DOUBLE AS "__qg_q0"',
        [len(means), means],
    )
    ctes = ", ".join(_quantile_ctes(block, "ent", 0, "stats"))
    [(n, center, spread)] = con.execute(
        f'WITH {ctes} SELECT n, center, spread FROM "stats"'
    ).fetchall()
    ranked = sorted(means)
    rank = fraction * (len(ranked) - 1) + 1
    window = [v for r, v in enumerate(ranked, 1) if abs(r - rank) <= 2]
    assert n == len(means) and center == pytest.approx(sum(window) / len(window))
    assert spread == max(window) - min(window)
