"""A DP release and the table checks on a dataset whose names are Chinese (issue 14 item 1):
the released table is headed by the researcher's Chinese names, whichever way the query
wrote the catalogue's names, and small cells of a Chinese-headed table are found."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from export_review import ledger
from export_review.disclosure import check_table
from export_review.dp_export import release_dp
from export_review.file_gate import check_files
from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly, run_query
from sandbox.contracts import Column, Sensitivity, load_agreement, load_catalog
from sandbox.db.base import Base, make_engine, make_sessionmaker, transaction
from sandbox.errors import PolicyViolation

DISTRICTS = ["梁溪区", "滨湖区", "惠山区", "新吴区"]  # 新吴区 has three patients
ENTRY = {
    "name": "门诊就诊", "title": "门诊就诊记录", "provider": "health", "domain": "卫生健康",
    "summary": "每次就诊一行", "open_class": "conditional", "conditions": "科研机构",
    "format": "parquet", "update_frequency": "monthly", "contact": "data@example.gov",
    "entity": "身份证号", "source": "门诊就诊.parquet",
    "columns": [
        {"name": "身份证号", "type": "VARCHAR", "sensitivity": "identifier"},
        {"name": "区县", "type": "VARCHAR", "values": DISTRICTS},
        {"name": "费用_元", "header": "费用（元）", "type": "DOUBLE", "bounds": [0, 1000]},
        {"name": "bmi指数", "header": "BMI指数", "type": "DOUBLE", "bounds": [10, 40]},
    ],
}  # fmt: skip
AGREEMENT = {
    "id": "AGR-ZH-DP", "title": "分区县门诊", "provider": "health", "researchers": ["alice"],
    "purpose": "按区县统计就诊", "valid_from": "2026-01-01", "valid_until": "2027-12-31",
    "datasets": {"门诊就诊": {"columns": ["区县", "费用_元", "bmi指数"]}},
    "privacy": {"epsilon": 3.0, "max_contributions": 2}, "outputs": ["dp_table", "table"],
}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("zh-dp")
    (root / "catalog").mkdir()
    rng = random.Random(2)
    rows: dict[str, list] = {"身份证号": [], "区县": [], "费用_元": [], "bmi指数": []}
    for i in range(203):
        for _ in range(rng.randint(1, 2)):
            rows["身份证号"].append(f"p{i}")
            rows["区县"].append(DISTRICTS[3] if i >= 200 else DISTRICTS[i % 3])
            rows["费用_元"].append(round(rng.uniform(10, 900), 2))
            rows["bmi指数"].append(round(rng.uniform(18, 30), 1))
    pq.write_table(pa.table(rows), root / "catalog" / "门诊就诊.parquet")
    (root / "catalog" / "门诊就诊.yaml").write_text(
        yaml.safe_dump(ENTRY, allow_unicode=True), encoding="utf-8"
    )
    (root / "agreement.yaml").write_text(
        yaml.safe_dump(AGREEMENT, allow_unicode=True), encoding="utf-8"
    )
    catalog, agreement = load_catalog(root / "catalog"), load_agreement(root / "agreement.yaml")
    db = build_agreement_database(agreement, catalog, out_path=root / "a.duckdb", key=b"k" * 32)
    return agreement, catalog, open_readonly(db, temp_dir=root / "tmp")


@pytest.fixture
def sessions(world, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    Base.metadata.create_all(
        engine, tables=[ledger.PrivacyBudget.__table__, ledger.PrivacyCharge.__table__]
    )
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        ledger.ensure_budget(session, world[0])
    return factory


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 区县, COUNT(*) AS 就诊人次, AVG(BMI指数) AS 平均指数 FROM 门诊就诊 GROUP BY 区县",
        'SELECT "区县", count(*) AS "就诊人次", avg("bmi指数") AS 平均指数 FROM "门诊就诊" '
        'GROUP BY "区县"',
    ],
)
def test_a_dp_table_is_headed_by_the_chinese_names(world, sessions, sql: str) -> None:  # type: ignore[no-untyped-def]
    agreement, catalog, conn = world
    out = release_dp(
        sessions=sessions, conn=conn, agreement=agreement, catalog=catalog, sql=sql, epsilon=1.0
    )
    assert out["columns"] == ["区县", "就诊人次", "平均指数"]
    assert sorted(row[0] for row in out["rows"]) == sorted(DISTRICTS)  # the public key values
    assert all(10 <= row[2] <= 40 for row in out["rows"] if row[2] is not None)


def test_the_table_checks_find_small_cells_of_a_chinese_headed_table(world) -> None:  # type: ignore[no-untyped-def]
    agreement, _, conn = world
    rows = run_query(conn, "SELECT 区县, 费用_元 FROM 门诊就诊", 30).to_pandas()
    check = check_table(rows, index=["区县"], values="费用_元", statistic="sum")
    assert list(check.table.index) == sorted(DISTRICTS) and check.table.index.name == "区县"
    assert check.outcome.loc["新吴区", "sum"].startswith("threshold")
    assert check.outcome.loc["梁溪区", "sum"] == "ok"
    assert check.status == "fail" and check.status_after == "pass"


@pytest.mark.parametrize(
    "header",
    ["身份证号", " 身份证号 ", "身份证号码", "ＩＤ", "Id"],  # names, a file header, look-alikes
)
def test_a_table_headed_by_an_identifier_column_does_not_leave(
    world, tmp_path: Path, header: str
) -> None:  # type: ignore[no-untyped-def]
    agreement, catalog, _ = world
    catalog = {"门诊就诊": catalog["门诊就诊"].model_copy(update={"columns": [
        *catalog["门诊就诊"].columns[1:],
        catalog["门诊就诊"].columns[0].model_copy(update={"header": "身份证号码"}),
        Column(name="id", type="VARCHAR", sensitivity=Sensitivity.identifier),
    ]})}  # fmt: skip
    path = tmp_path / "t.csv"
    path.write_text(f"区县,{header}\n梁溪区,1\n", encoding="utf-8")
    with pytest.raises(PolicyViolation) as refused:
        check_files([path], agreement=agreement, catalog=catalog)
    assert refused.value.rule == "export-file-identifier"
    path.write_text("区县,就诊人次\n梁溪区,12\n", encoding="utf-8")
    assert check_files([path], agreement=agreement, catalog=catalog)[0].rows == 1
