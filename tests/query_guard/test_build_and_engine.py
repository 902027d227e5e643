"""The per-agreement database, the pseudonym keys and the hardened engine, on real files."""

from __future__ import annotations

import hashlib
import hmac
import stat

import duckdb
import pytest

from query_guard import keys
from query_guard.compile import (
    CONTRIBUTION_RANK,
    CONTRIBUTOR,
    CONTRIBUTOR_SEED,
    PRIVATE_SCHEMA,
    SOURCES_TABLE,
    build_agreement_database,
    pseudonym,
)
from query_guard.engine import run_query
from query_guard.guard import check_query
from sandbox.contracts import load_agreement, load_catalog
from sandbox.errors import NotFound, PolicyViolation, SandboxError
from tests.query_guard.conftest import KEY
from tests.query_guard.data import FILTERED_CANARY, HIDDEN_CANARY


def _tables(con: duckdb.DuckDBPyConnection, schema: str = "main") -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = ? ORDER BY table_name, ordinal_position",
        [schema],
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def test_database_shows_only_agreed_columns_and_keeps_the_rest_private(aggregate, record) -> None:
    """Researchers' relations are views of exactly the agreed columns: no star or pattern
    can reach the contribution rank, which only the private tables hold."""
    for built in (aggregate, record):
        assert _tables(built.conn) == {
            "visits": ["patient_id", "visit_date", "district", "cost"],
            "people": ["person_id", "age"],
        }
        assert _tables(built.conn, PRIVATE_SCHEMA) == {
            SOURCES_TABLE: ["dataset", "digest", "max_rows"],
            "visits": [
                "patient_id",
                "visit_date",
                "district",
                "cost",
                CONTRIBUTOR,
                CONTRIBUTION_RANK,
                CONTRIBUTOR_SEED,
            ],
            "people": ["person_id", "age", CONTRIBUTOR, CONTRIBUTION_RANK, CONTRIBUTOR_SEED],
        }
    stored = {
        name: (digest, most)
        for name, digest, most in aggregate.conn.execute(
            f"SELECT * FROM {PRIVATE_SCHEMA}.{SOURCES_TABLE}"
        ).fetchall()
    }
    assert set(stored) == {"visits", "people"} and all(len(d) == 64 for d, _ in stored.values())
    most_visits = aggregate.conn.execute(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM visits GROUP BY patient_id)"
    ).fetchone()[0]
    assert stored["visits"][1] == most_visits and stored["people"][1] == 1


def test_rows_filtered_and_identifiers_pseudonymised(aggregate) -> None:
    con = aggregate.conn
    ids = {r[0] for r in con.execute("SELECT patient_id FROM visits").fetchall()}
    dump = str(con.execute("SELECT * FROM visits").fetchall())
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'visits' AND table_schema = 'main'"
        ).fetchall()
    )
    assert FILTERED_CANARY not in dump and HIDDEN_CANARY not in dump
    assert not ids & set(aggregate.raw_ids)
    assert pseudonym(aggregate.raw_ids[0], KEY) in ids
    assert types == {
        "patient_id": "BIGINT",
        "visit_date": "DATE",
        "district": "VARCHAR",
        "cost": "DOUBLE",
    }


def test_guard_schema_is_the_database_without_the_contribution_rank(aggregate, record) -> None:
    """The guard types columns as stored (pseudonyms BIGINT) and never knows the rank."""
    for built in (aggregate, record):
        stored = built.conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main'"
        ).fetchall()
        schema = {(t, c, ty) for t, cols in built.ctx.schema.items() for c, ty in cols.items()}
        assert set(stored) == schema
        assert ("visits", "patient_id", "BIGINT") in schema


def test_pseudonyms_are_the_first_63_bits_of_the_keyed_hmac(aggregate) -> None:
    """The in-engine HMAC equals Python's hmac, truncated to a non-negative BIGINT."""
    expected = {pseudonym(raw, KEY) for raw in aggregate.raw_ids}
    stored = {r[0] for r in aggregate.conn.execute("SELECT person_id FROM people").fetchall()}
    digest = hmac.new(KEY, aggregate.raw_ids[5].encode(), hashlib.sha256).digest()
    assert pseudonym(aggregate.raw_ids[5], KEY) == int.from_bytes(digest[:8], "big") >> 1
    assert stored == expected and len(stored) == len(aggregate.raw_ids)
    assert all(0 <= p < 2**63 for p in stored)


def test_contribution_rank_is_a_random_order_within_each_entity(world, tmp_path) -> None:
    """Ranks run 1..n within every entity, and are drawn afresh (not the file order) per build."""
    root, _ = world
    catalog = load_catalog(root / "catalog")
    agreement = load_agreement(root / "agreement-aggregate.yaml")
    first_rows = []
    for i in range(2):
        db = build_agreement_database(
            agreement, catalog, out_path=tmp_path / f"{i}.duckdb", key=KEY
        )
        con = duckdb.connect(str(db), read_only=True)
        rank = f'"{CONTRIBUTION_RANK}"'
        assert con.execute(
            f"SELECT count(*) FROM (SELECT patient_id, list_sort(list({rank})) AS r, count(*) AS n"
            f" FROM {PRIVATE_SCHEMA}.visits GROUP BY patient_id) WHERE r <> range(1, n + 1)"
        ).fetchone() == (0,)
        first_rows.append(
            set(
                con.execute(
                    f"SELECT patient_id, visit_date, cost FROM {PRIVATE_SCHEMA}.visits "
                    f"WHERE {rank} = 1"
                ).fetchall()
            )
        )
        several = con.execute(
            "SELECT count(*) FROM (SELECT patient_id FROM visits "
            "GROUP BY patient_id HAVING count(*) > 1)"
        ).fetchone()[0]
        con.close()
        assert several > 20  # so that two equal draws are practically impossible
    assert first_rows[0] != first_rows[1]


def test_pseudonyms_unlinkable_across_agreements(world, tmp_path) -> None:
    root, raw = world
    catalog = load_catalog(root / "catalog")
    agreement = load_agreement(root / "agreement-record.yaml")
    dbs = [
        build_agreement_database(agreement, catalog, out_path=tmp_path / f"{i}.duckdb", key=k)
        for i, k in enumerate([b"a" * 32, b"b" * 32])
    ]
    sets = []
    for db in dbs:
        con = duckdb.connect(str(db), read_only=True)
        sets.append({r[0] for r in con.execute("SELECT person_id FROM people").fetchall()})
        con.close()
    assert len(sets[0]) == len(raw) and not sets[0] & sets[1]


def test_suspended_dataset_left_out_and_build_is_atomic(world, tmp_path) -> None:
    root, _ = world
    catalog = load_catalog(root / "catalog")
    agreement = load_agreement(root / "agreement-aggregate.yaml")
    db = build_agreement_database(
        agreement, catalog, out_path=tmp_path / "s.duckdb", key=KEY, suspended=frozenset({"people"})
    )
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert set(_tables(con)) == {"visits"}
        assert set(_tables(con, PRIVATE_SCHEMA)) == {"visits", SOURCES_TABLE}
    finally:
        con.close()
    broken = {"visits": tmp_path / "missing.parquet"}
    with pytest.raises(SandboxError):
        build_agreement_database(
            agreement, catalog, out_path=tmp_path / "b.duckdb", key=KEY, sources=broken
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.duckdb"]


def test_keys_created_private_and_destroyed(tmp_path) -> None:
    key = keys.create_key(tmp_path / "keys", "AGR-1")
    path = keys.key_path(tmp_path / "keys", "AGR-1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) == 32
    assert keys.get_or_create_key(tmp_path / "keys", "AGR-1") == key
    assert keys.destroy_key(tmp_path / "keys", "AGR-1") and not path.exists()
    with pytest.raises(NotFound):
        keys.load_key(tmp_path / "keys", "AGR-1")
    with pytest.raises(SandboxError):
        keys.key_path(tmp_path, "../escape")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "COPY visits TO '/tmp/qg-escape.csv'",
        "ATTACH '/tmp/qg-other.duckdb' AS o",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "CREATE TABLE x AS SELECT 1",
        "SELECT * FROM glob('/*')",
    ],
)
def test_engine_refuses_escapes_even_without_the_guard(aggregate, sql) -> None:
    with pytest.raises(SandboxError):
        run_query(aggregate.conn, sql, timeout_s=10)


def test_engine_error_never_quotes_data(aggregate) -> None:
    with pytest.raises(SandboxError) as err:
        run_query(aggregate.conn, "SELECT CAST(district AS INTEGER) FROM visits", 10)
    assert "Liangxi" not in str(err.value) and "Xishan" not in str(err.value)


def test_scalar_subquery_with_several_rows_is_no_error_oracle(record) -> None:
    sql = (
        "SELECT district, count(*) AS n FROM visits WHERE cost > "
        "(SELECT avg(cost) FROM visits GROUP BY district) GROUP BY district"
    )
    decision = check_query(sql, record.ctx)
    assert decision.action != "block", decision.reasons
    run_query(record.conn, decision.sql, timeout_s=10)  # would raise "more than one row"
    run_query(record.conn, "SELECT (SELECT district FROM visits)", timeout_s=10)


def test_engine_timeout_interrupts(aggregate) -> None:
    slow = "SELECT count(*) FROM range(100000000000) a(x) WHERE x % 7 = 3"
    with pytest.raises(PolicyViolation) as err:
        run_query(aggregate.conn, slow, timeout_s=0.2)
    assert err.value.rule == "QG-013"


def test_engine_is_read_only_and_replacement_scans_off(aggregate) -> None:
    import pandas as pd  # noqa: F401 - a DataFrame in scope must not become a table

    frame = pd.DataFrame({"x": [1]})  # noqa: F841
    with pytest.raises(SandboxError):
        run_query(aggregate.conn, "SELECT * FROM frame", 10)
    assert aggregate.conn.execute(
        "SELECT current_setting('enable_external_access'), current_setting('lock_configuration')"
    ).fetchone() == (False, True)


def test_stored_rows_keep_the_source_order(aggregate) -> None:
    """The contribution rank is drawn by a window over entities; the rows are stored back in
    the file's order (a file sorted by date keeps its runs and zone maps), which is what
    the agreement's own filter leaves of the file, row for row."""
    source = aggregate.root / "catalog" / "visits.parquet"
    agreed = aggregate.ctx.agreement.datasets["visits"]
    where = f" WHERE {agreed.row_filter}" if agreed.row_filter else ""
    expected = (
        duckdb.connect()
        .execute(
            "SELECT * FROM (SELECT CAST(visit_date AS DATE) AS visit_date, district "
            f"FROM read_parquet('{source}')){where}"
        )
        .fetchall()
    )
    stored = aggregate.conn.execute(
        f"SELECT visit_date, district FROM {PRIVATE_SCHEMA}.visits"
    ).fetchall()
    assert len(stored) > 100 and stored == expected
