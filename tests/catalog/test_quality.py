"""The quality report (R14: Wuxi Art.13) and the undeclared-identifier refusal (R13)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pyarrow as pa
import pytest

from sandbox.catalog.quality import quality_report, suggest_sensitivity
from sandbox.contracts import CatalogEntry, Sensitivity
from sandbox.errors import PolicyViolation
from tests.catalog.conftest import make_entry
from tests.catalog.idgen import resident_id

PEOPLE = [resident_id("990201", date(1960, 1, 1) + timedelta(days=97 * i), i) for i in range(20)]
#: A resident ID number with a wrong check character.
BROKEN = PEOPLE[0][:17] + ("0" if PEOPLE[0][17] != "0" else "1")


def _table(patient_ids: list[str | None], **overrides: list[object]) -> pa.Table:
    n = len(patient_ids)
    columns: dict[str, pa.Array] = {
        "patient_id": pa.array(patient_ids, pa.string()),
        "visit_date": pa.array(
            [date(2024, 1, 1) + timedelta(days=i) for i in range(n)], pa.date32()
        ),
        "district": pa.array(["梁溪区"] * n),
        "cost": pa.array([10.0 * i for i in range(n)]),
        "visits": pa.array([1] * n, pa.int32()),
    }
    for name, values in overrides.items():
        columns[name] = pa.array(values, columns[name].type)
    return pa.table(columns)


def test_counts_rows_nulls_duplicates_bounds_values_and_bad_identifiers(
    entry: CatalogEntry,
) -> None:
    ids = [*PEOPLE[:8], BROKEN, None]
    table = _table(
        ids,
        district=["梁溪区", "滨湖区", "锡山区", *["梁溪区"] * 6, None],
        cost=[-1.0, 0.0, 1000.0, 1000.01, *[5.0] * 6],
    )
    table = pa.concat_tables([table, table.slice(0, 2)])  # two exact duplicates
    report = quality_report(table, entry)
    assert report.rows == 12
    assert report.duplicate_rows == 2
    by_name = {c.name: c for c in report.columns}
    assert by_name["patient_id"].nulls == 1
    assert by_name["patient_id"].identifier_kind == "resident_id"
    assert by_name["patient_id"].invalid_identifiers == 1
    assert by_name["cost"].out_of_bounds == 3  # -1 twice (duplicated row) and 1000.01
    assert by_name["district"].not_in_values == 1  # 锡山区; a null is counted as empty instead
    assert by_name["district"].nulls == 1
    assert by_name["visits"].out_of_bounds is None and by_name["visits"].not_in_values is None


def test_report_is_json_and_problems_name_no_values(entry: CatalogEntry) -> None:
    report = quality_report(_table([*PEOPLE[:5], BROKEN]), entry)
    text = json.dumps(report.to_dict(), ensure_ascii=False)
    assert json.loads(text)["problems"] == [
        "patient_id: 1 values are not valid resident ID numbers (GB 11643-1999)"
    ]
    assert BROKEN not in text and PEOPLE[0] not in text


def test_identifier_column_of_another_kind_has_no_invalid_count(entry: CatalogEntry) -> None:
    report = quality_report(_table([f"H{i:06d}" for i in range(5)]), entry)
    assert report.columns[0].identifier_kind is None
    assert report.columns[0].invalid_identifiers is None


@pytest.mark.parametrize("declared", ["none", "quasi_identifier", "sensitive"])
def test_undeclared_resident_ids_are_refused(declared: str) -> None:
    entry = make_entry(patient_id=declared)
    with pytest.raises(PolicyViolation) as caught:
        quality_report(_table([*PEOPLE, BROKEN, None]), entry)
    error = caught.value
    assert error.rule == "undeclared-identifier"
    assert "Rizhao Art.10" in error.article and "Putuo Art.32" in error.article
    assert "visits_test.patient_id: 20 of 21 non-null values are valid resident ID" in error.message
    assert f"declared sensitivity: {declared}" in error.message
    assert "declare it sensitivity: identifier" in error.message
    assert not any(p in str(error) for p in [*PEOPLE, BROKEN])


def test_undeclared_credit_codes_in_a_text_column_are_refused() -> None:
    codes = ["914403001922038216"] * 10
    entry = make_entry()
    table = _table(PEOPLE[:10], district=codes)
    with pytest.raises(PolicyViolation, match="district: 10 of 10 .* unified social credit codes"):
        quality_report(table, entry)


def test_ids_kept_as_integers_are_caught_too() -> None:
    numeric = [p for p in PEOPLE if p[17] != "X"]
    entry = make_entry()
    table = _table(PEOPLE[: len(numeric)]).set_column(
        4, "visits", pa.array([int(p) for p in numeric], pa.int64())
    )
    with pytest.raises(PolicyViolation, match="visits_test.visits"):
        quality_report(table, entry)


def test_a_few_valid_numbers_by_chance_are_not_refused() -> None:
    """Below the 90% threshold the column is not an identifier column."""
    entry = make_entry(patient_id="none")
    report = quality_report(_table([*PEOPLE[:8], *[f"{i:018d}" for i in range(2)]]), entry)
    assert report.columns[0].identifier_kind is None


def test_suggestions_name_identifier_columns_only() -> None:
    table = _table(PEOPLE[:10], district=["914403001922038216"] * 10)
    assert suggest_sensitivity(table) == {
        "patient_id": Sensitivity.identifier,
        "district": Sensitivity.identifier,
    }
    assert suggest_sensitivity(_table([f"H{i}" for i in range(10)])) == {}
