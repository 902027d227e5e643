"""Chinese tables and columns through the guard and the per-agreement build (issue 14
item 1): a GBK file headed 身份证号, 就诊日期, 区县, 费用（元）, BMI指数 is read into
the catalogue's names, built with its identifiers pseudonymised, and queried by those
names quoted or not, in aggregate and in record mode, on real DuckDB files."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from query_guard.compile import PRIVATE_SCHEMA, build_agreement_database, pseudonym
from query_guard.engine import open_readonly, run_query
from query_guard.guard import GuardContext, check_query
from sandbox.catalog.reading import read_table
from sandbox.contracts import load_agreement, load_catalog
from tests.catalog.idgen import resident_id

KEY = b"z" * 32
DISTRICTS = ["梁溪区", "滨湖区", "惠山区", "锡山区"]
SMALL = "新吴区"  # three patients: below min_group_size in every query
HEADER = ["身份证号", "就诊日期", "区县", "费用（元）", "BMI指数"]

VISITS = {
    "name": "门诊就诊", "title": "门诊就诊记录", "provider": "health", "domain": "卫生健康",
    "summary": "每次就诊一行", "open_class": "conditional", "conditions": "科研机构",
    "format": "parquet", "update_frequency": "monthly", "contact": "data@example.gov",
    "entity": "身份证号", "source": "门诊就诊.parquet",
    "columns": [
        {"name": "身份证号", "type": "VARCHAR", "sensitivity": "identifier"},
        {"name": "就诊日期", "type": "DATE", "sensitivity": "quasi_identifier"},
        {"name": "区县", "type": "VARCHAR", "sensitivity": "quasi_identifier"},
        {"name": "费用_元", "header": "费用（元）", "type": "DOUBLE", "bounds": [0, 1000]},
        {"name": "bmi指数", "header": "BMI指数", "type": "DOUBLE", "bounds": [10, 40]},
    ],
}  # fmt: skip
PEOPLE = {
    **VISITS, "name": "人口", "title": "常住人口", "entity": "公民身份号码",
    "source": "人口.parquet",
    "columns": [
        {"name": "公民身份号码", "type": "VARCHAR", "sensitivity": "identifier"},
        {"name": "年龄", "type": "INTEGER", "sensitivity": "quasi_identifier"},
    ],
}  # fmt: skip


def _agreement(mode: str) -> dict:
    return {
        "id": f"AGR-ZH-{mode}", "title": "分区县门诊", "provider": "health",
        "researchers": ["alice"], "purpose": "按区县统计就诊", "mode": mode,
        "valid_from": "2026-01-01", "valid_until": "2027-12-31",
        "datasets": {
            "门诊就诊": {"columns": ["身份证号", "就诊日期", "区县", "费用_元", "bmi指数"],
                         "row_filter": "就诊日期 >= DATE '2024-01-01'"},
            "人口": {"columns": ["公民身份号码", "年龄"]},
        },
        "joins": [["门诊就诊.身份证号", "人口.公民身份号码"]],
        "disclosure": {"min_group_size": 5, "max_result_rows": 1000},
    }  # fmt: skip


@dataclass
class World:
    ctx: GuardContext
    conn: duckdb.DuckDBPyConnection
    ids: list[str]
    db: Path


def _rows(ids: list[str]) -> list[list[str]]:
    rng = random.Random(5)
    rows = []
    for i, pid in enumerate(ids):
        district = SMALL if i >= len(ids) - 3 else DISTRICTS[i % len(DISTRICTS)]
        for _ in range(rng.randint(1, 3)):
            day = date(2024, 1, 1) + timedelta(days=rng.randint(0, 300))
            rows.append([pid, f"{day.year}年{day.month}月{day.day}日", district,
                         f"{rng.uniform(10, 900):,.2f}", f"{rng.uniform(18, 30):.1f}"])  # fmt: skip
        rows.append([pid, "2023/6/1", district, "1", "20"])  # removed by the row filter
    return rows


def _gbk(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="gbk", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The catalogue with its sources as publishing stores them: GBK CSV read into Parquet."""
    root = tmp_path_factory.mktemp("zh")
    catalog = root / "catalog"
    catalog.mkdir()
    for entry in (VISITS, PEOPLE):
        (catalog / f"{entry['name']}.yaml").write_text(
            yaml.safe_dump(entry, allow_unicode=True), encoding="utf-8"
        )
    entries = load_catalog(catalog)
    ids = [resident_id("320202", date(1960, 1, 1) + timedelta(days=97 * i), i) for i in range(63)]
    visits = _gbk(root / "门诊就诊.csv", HEADER, _rows(ids))
    pq.write_table(read_table(visits, entries["门诊就诊"]), catalog / "门诊就诊.parquet")
    people = _gbk(root / "人口.csv", ["公民身份号码", "年龄"],
                  [[pid, str(20 + i % 60)] for i, pid in enumerate(ids)])  # fmt: skip
    pq.write_table(read_table(people, entries["人口"]), catalog / "人口.parquet")
    for mode in ("aggregate", "record"):
        (root / f"{mode}.yaml").write_text(
            yaml.safe_dump(_agreement(mode), allow_unicode=True), encoding="utf-8"
        )
    return root, ids


def _world(files: tuple[Path, list[str]], mode: str) -> World:
    root, ids = files
    catalog = load_catalog(root / "catalog")
    agreement = load_agreement(root / f"{mode}.yaml")
    db = build_agreement_database(agreement, catalog, out_path=root / f"{mode}.duckdb", key=KEY)
    conn = open_readonly(db, memory_limit="256MB", threads=1, temp_dir=root / f"tmp-{mode}")
    return World(GuardContext(agreement, catalog), conn, ids, db)


@pytest.fixture(scope="module")
def aggregate(files: tuple[Path, list[str]]) -> World:
    return _world(files, "aggregate")


@pytest.fixture(scope="module")
def record(files: tuple[Path, list[str]]) -> World:
    return _world(files, "record")


def _run(world: World, sql: str):
    decision = check_query(sql, world.ctx)
    assert decision.sql is not None, decision.to_dict()
    return run_query(world.conn, decision.sql, 30)


def test_the_build_names_views_and_columns_in_chinese_and_pseudonymises_the_ids(
    aggregate: World, record: World
) -> None:
    for world in (aggregate, record):
        columns = world.conn.execute(
            "SELECT table_name, list(column_name ORDER BY ordinal_position) "
            "FROM information_schema.columns WHERE table_schema = 'main' GROUP BY table_name "
            "ORDER BY table_name"
        ).fetchall()
        assert columns == [
            ("人口", ["公民身份号码", "年龄"]),
            ("门诊就诊", ["身份证号", "就诊日期", "区县", "费用_元", "bmi指数"]),
        ]
    private = f'SELECT "身份证号" FROM {PRIVATE_SCHEMA}."门诊就诊"'
    stored = {r[0] for r in record.conn.execute(private).fetchall()}
    assert stored == {pseudonym(pid, KEY) for pid in record.ids}
    dump = str(record.conn.execute(f"SELECT * FROM {PRIVATE_SCHEMA}.门诊就诊").fetchall())
    assert not any(pid in dump for pid in record.ids)
    earliest = record.conn.execute("SELECT min(就诊日期) FROM 门诊就诊").fetchone()[0]
    assert earliest >= date(2024, 1, 1)  # the row filter, written in Chinese names, held


WRITTEN = [
    "SELECT 区县, count(*) FROM 门诊就诊 GROUP BY 区县",
    'SELECT "区县", count(*) FROM "门诊就诊" GROUP BY "区县"',
    'SELECT 门诊就诊."区县", COUNT(*) FROM 门诊就诊 GROUP BY 1',
]


@pytest.mark.parametrize("sql", WRITTEN)
def test_aggregate_mode_answers_by_chinese_names_quoted_or_not(aggregate: World, sql: str) -> None:
    decision = check_query(sql, aggregate.ctx)
    assert decision.action == "rewrite" and "QG-022" in {r.rule for r in decision.reasons}
    table = _run(aggregate, sql)
    assert table.column_names[0] == "区县"
    assert table.to_pylist() == _run(aggregate, WRITTEN[0]).to_pylist()  # the same noise
    counts = dict(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    assert set(counts) == set(DISTRICTS)  # the district of three patients is suppressed
    true = dict(
        aggregate.conn.execute(
            f"SELECT 区县, count(*) FROM {PRIVATE_SCHEMA}.门诊就诊 GROUP BY 区县"
        ).fetchall()
    )
    assert all(abs(counts[d] - true[d]) <= 15 for d in DISTRICTS)


def test_a_mixed_name_is_one_column_however_its_case_is_written(aggregate: World) -> None:
    """``BMI指数`` (the file's header), ``bmi指数`` and ``"BMI指数"`` are the column bmi指数;
    the full-width ``ＢＭＩ指数`` is no name of it and is refused by rule."""
    answers = [
        _run(aggregate, f"SELECT 区县, avg({name}) AS 平均 FROM 门诊就诊 GROUP BY 区县 ORDER BY 1")
        for name in ("BMI指数", "bmi指数", '"BMI指数"')
    ]
    assert answers[0].to_pylist() == answers[1].to_pylist() == answers[2].to_pylist()
    assert answers[0].column_names == ["区县", "平均"]
    refused = check_query("SELECT avg(ＢＭＩ指数) FROM 门诊就诊", aggregate.ctx)
    assert refused.action == "block" and {r.rule for r in refused.reasons} == {"QG-006"}


def test_aggregate_mode_keeps_a_chinese_identifier_column_unseen(aggregate: World) -> None:
    shown = check_query("SELECT 身份证号, count(*) FROM 门诊就诊 GROUP BY 身份证号", aggregate.ctx)
    assert shown.action == "block" and "QG-007" in {r.rule for r in shown.reasons}
    patients = _run(aggregate, "SELECT count(DISTINCT 身份证号) AS 人数 FROM 门诊就诊")
    assert patients.column_names == ["人数"] and abs(patients.column(0)[0].as_py() - 63) <= 15


def test_record_mode_rows_by_chinese_names_with_pseudonyms_and_declared_joins(
    record: World,
) -> None:
    rows = _run(record, "SELECT 身份证号, 区县, 费用_元 FROM 门诊就诊 WHERE 区县 = '梁溪区'")
    assert rows.column_names == ["身份证号", "区县", "费用_元"]
    assert set(rows.column("区县").to_pylist()) == {"梁溪区"}
    pseudonyms = {pseudonym(pid, KEY) for pid in record.ids}
    assert set(rows.column("身份证号").to_pylist()) <= pseudonyms
    joined = _run(
        record,
        'SELECT p.年龄, v."区县" FROM 门诊就诊 v JOIN "人口" p ON v.身份证号 = p.公民身份号码',
    )
    assert joined.num_rows == record.conn.execute("SELECT count(*) FROM 门诊就诊").fetchone()[0]
    undeclared = check_query(
        "SELECT p.年龄 FROM 门诊就诊 v JOIN 人口 p ON v.区县 = CAST(p.年龄 AS VARCHAR)", record.ctx
    )
    assert undeclared.action == "block" and "QG-008" in {r.rule for r in undeclared.reasons}
    unknown = check_query("SELECT 姓名 FROM 门诊就诊", record.ctx)
    assert unknown.action == "block" and {r.rule for r in unknown.reasons} == {"QG-006"}
