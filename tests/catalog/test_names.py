"""SQL names in Chinese: the name rules, the catalogue contract that applies them, files
read by their headers, and identifier columns proposed by name and by value."""

from __future__ import annotations

import csv
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlglot import exp

from sandbox.catalog.identifiers import credit_code_check_char
from sandbox.catalog.quality import suggest_sensitivity
from sandbox.catalog.reading import read_table
from sandbox.contracts import Agreement, CatalogEntry, Sensitivity
from sandbox.contracts.names import clashes, fold, problem, proposed_name, sql_name
from sandbox.errors import ValidationFailed
from tests.catalog.idgen import resident_id

#: 豈 as a CJK compatibility ideograph (U+F900): NFC makes it the unified U+8C48.
COMPATIBILITY_HAN = "\uf900"
UNIFIED_HAN = unicodedata.normalize("NFC", COMPATIBILITY_HAN)


@pytest.mark.parametrize(
    "name", ["区县", "门诊就诊", "gdp增速", "district", "_x", "就诊2024", "𠮷溪区", "visit_date"]
)
def test_chinese_and_ascii_names_are_sql_names(name: str) -> None:
    assert problem(name) is None and sql_name(name) == name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("ＧＤＰ增速", "full-width or compatibility characters, which look like other characters "
                       "but are not them; write 'gdp增速'"),
        ("①号", "full-width or compatibility characters"),
        ("GDP增速", "must be lower case (SQL does not tell cases apart); write 'gdp增速'"),
        ("金额（万元）", "write '金额_万元'"),
        ("金额(万元)", "may hold only lower-case letters a-z, Chinese characters, digits and "
                      "underscores, not starting with a digit; write '金额_万元'"),
        ("dаta", "may hold only"),  # Cyrillic а, which looks like Latin a
        ("2024年", "not starting with a digit; write '_2024年'"),
        ("年龄 岁", "write '年龄_岁'"),
        ("__qg_contributor", "reserved for the platform"),
        ("", "must not be empty"),
        ("区" * 64, "at most 63"),
    ],
)  # fmt: skip
def test_other_names_are_refused_saying_what_to_write(name: str, says: str) -> None:
    assert says in (problem(name) or "")
    with pytest.raises(ValueError, match="must be a SQL name"):
        sql_name(name)


def test_names_are_nfc() -> None:
    assert COMPATIBILITY_HAN != UNIFIED_HAN
    assert sql_name(f"{COMPATIBILITY_HAN}区") == f"{UNIFIED_HAN}区"


def test_look_alike_names_clash_and_others_do_not() -> None:
    assert fold("ＧＤＰ增速") == fold("GDP增速") == fold("gdp增速")
    assert clashes(["GDP增速", "区县", "gdp增速", "ＧＤＰ增速", "a"]) == [
        ["GDP增速", "gdp增速", "ＧＤＰ增速"]
    ]
    assert clashes(["区县", "县区", "district"]) == []


def test_a_header_is_proposed_as_its_lower_case_name_or_left_for_the_refusal() -> None:
    assert proposed_name(" GDP增速 ") == "gdp增速"
    assert proposed_name("区县") == "区县"
    assert proposed_name("ＧＤＰ") == "ＧＤＰ"  # refused on preview, with what to write
    assert proposed_name("金额（万元）") == "金额（万元）"


#: Every character a SQL name may hold, drawn from: ASCII and Han (BMP and beyond).
NAME_CHARS = st.sampled_from("abcxyz_019区县门诊就诊日期费用身份证号𠮷豈")


@given(st.text(NAME_CHARS, min_size=1, max_size=12))
def test_any_valid_name_is_one_unquoted_identifier_to_sqlglot_and_duckdb(text: str) -> None:
    """What the rules let through stays one name, unquoted or quoted, for the guard's
    parser and for DuckDB: nothing in it is folded, split or read as syntax."""
    if problem(text) is not None:
        return
    for written in (text, f'"{text}"'):
        tree = sqlglot.parse_one(f"SELECT {written} FROM t", read="duckdb")
        (column,) = tree.find_all(exp.Column)
        assert column.name == text
    con = duckdb.connect()
    con.execute(f'CREATE TABLE t ("{text}" INTEGER)')
    assert con.execute(f"SELECT {text} FROM t").description[0][0] == text


def _entry(columns: list[dict[str, Any]], name: str = "门诊就诊", **more: Any) -> CatalogEntry:
    return CatalogEntry.model_validate(
        {
            "name": name, "title": "门诊就诊", "provider": "health", "domain": "health",
            "summary": "test", "open_class": "conditional", "conditions": "sandbox only",
            "update_frequency": "monthly", "contact": "a@example.org", "columns": columns,
            **more,
        }
    )  # fmt: skip


def test_the_contract_takes_chinese_names_and_refuses_the_others() -> None:
    entry = _entry(
        [{"name": "身份证号", "type": "VARCHAR", "sensitivity": "identifier"},
         {"name": "gdp增速", "type": "DOUBLE", "header": "GDP增速"}],
        entity="身份证号",
    )  # fmt: skip
    assert entry.name == "门诊就诊" and entry.column_names == ["身份证号", "gdp增速"]
    assert [c.file_header for c in entry.columns] == ["身份证号", "GDP增速"]
    with pytest.raises(ValidationError, match="write 'gdp增速'"):
        _entry([{"name": "ＧＤＰ增速", "type": "DOUBLE"}])
    with pytest.raises(ValidationError, match="must be lower case"):
        _entry([{"name": "x", "type": "DOUBLE"}], name="门诊就诊A")
    with pytest.raises(ValidationError, match="alike: '区县' and '区县'"):
        _entry([{"name": "区县", "type": "VARCHAR"}, {"name": "区县", "type": "VARCHAR",
                                                       "header": "区县2"}])  # fmt: skip
    with pytest.raises(ValidationError, match="headers must be unique"):
        _entry([{"name": "a", "type": "VARCHAR", "header": "区县"},
                {"name": "b", "type": "VARCHAR", "header": "区县"}])  # fmt: skip


def test_the_contract_and_the_agreement_keep_names_in_nfc() -> None:
    entry = _entry([{"name": f"{COMPATIBILITY_HAN}区", "type": "VARCHAR"}],
                   entity=f"{COMPATIBILITY_HAN}区")  # fmt: skip
    assert entry.column_names == [f"{UNIFIED_HAN}区"] and entry.entity == f"{UNIFIED_HAN}区"
    agreement = Agreement.model_validate(
        {
            "id": "AGR-NFC", "title": "t", "provider": "health", "researchers": ["alice"],
            "purpose": "p", "valid_from": "2026-01-01", "valid_until": "2026-12-31",
            "datasets": {f"{COMPATIBILITY_HAN}表": {"columns": [f"{COMPATIBILITY_HAN}区"]}},
            "joins": [[f"{COMPATIBILITY_HAN}表.{COMPATIBILITY_HAN}区",
                       f"{COMPATIBILITY_HAN}表.{COMPATIBILITY_HAN}区"]],
        }
    )  # fmt: skip
    assert list(agreement.datasets) == [f"{UNIFIED_HAN}表"]
    assert agreement.datasets[f"{UNIFIED_HAN}表"].columns == [f"{UNIFIED_HAN}区"]
    assert agreement.joins == [(f"{UNIFIED_HAN}表.{UNIFIED_HAN}区",) * 2]


def _gbk_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="gbk", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def test_a_file_is_read_by_its_headers_into_the_sql_names(tmp_path: Path) -> None:
    """Headers are matched in NFC (a system that writes 豈 as its compatibility form still
    matches), and a column whose header is not its SQL name is read into the name."""
    entry = _entry(
        [{"name": "区县", "type": "VARCHAR"},
         {"name": "gdp增速", "type": "DOUBLE", "header": "GDP增速"},
         {"name": f"{UNIFIED_HAN}号", "type": "BIGINT"}],
    )  # fmt: skip
    header = ["GDP增速", "区县", f"{COMPATIBILITY_HAN}号"]
    path = tmp_path / "门诊.csv"
    path.write_text(
        "\n".join([",".join(header), "1.5,梁溪区,3", "2.5,滨湖区,4"]) + "\n", encoding="utf-8"
    )
    table = read_table(path, entry)
    assert table.column_names == ["区县", "gdp增速", f"{UNIFIED_HAN}号"]
    assert table.column("gdp增速").to_pylist() == [1.5, 2.5]
    with pytest.raises(ValidationFailed, match="missing column\\(s\\) GDP增速") as refused:
        read_table(_gbk_csv(tmp_path / "b.csv", ["gdp增速", "区县", "豈号"], [["1", "a", "2"]]),
                   entry)  # fmt: skip
    assert refused.value.rule == "upload-columns"


def test_identifier_columns_are_proposed_by_name_and_by_value() -> None:
    n = 20
    bodies = [f"91320200{i:09d}" for i in range(n)]
    table = pa.table(
        {
            "证件": [resident_id("320202", date(1980, 1, 1), i) for i in range(n)],  # GB 11643
            "单位": [b + credit_code_check_char(b) for b in bodies],  # by value: GB 32100
            "联系": [f"139{i:08d}" for i in range(n)],  # by value: mobile numbers
            "姓名": [f"张{i}" for i in range(n)],  # by name
            "手机号": [None] * n,  # by name, with no value at all
            "家庭住址": [f"梁溪区{i}号" for i in range(n)],
            "身份证号": [f"X{i}" for i in range(n)],  # by name, whatever its values
            "统一社会信用代码": [""] * n,
            "区县": ["梁溪区"] * n,
            "费用": [float(i) for i in range(n)],
            "病例号": [f"{i:011d}" for i in range(n)],  # 11 digits, no mobile prefix
        }
    )
    suggested = suggest_sensitivity(table)
    assert suggested == {
        name: Sensitivity.identifier
        for name in ("证件", "单位", "联系", "姓名", "手机号", "家庭住址", "身份证号",
                     "统一社会信用代码")
    }  # fmt: skip
