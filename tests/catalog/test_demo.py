"""The synthetic demo catalogue: valid contracts, clean quality, and no real identifiers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.catalog.identifiers import is_credit_code, is_resident_id
from sandbox.catalog.quality import quality_report
from sandbox.catalog.reading import read_table
from sandbox.contracts import CatalogEntry, OpenClass, load_agreement, load_catalog
from sandbox.contracts.validation import validate_agreement
from sandbox.demo import DEMO_AGREEMENTS_DIR, build_demo_catalog, generate_demo

#: Province-level codes of GB/T 2260 (mainland, Taiwan 71, Hong Kong 81, Macao 82).
REAL_PROVINCES = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, CatalogEntry], dict[str, pa.Table]]:
    catalog = load_catalog(build_demo_catalog(tmp_path_factory.mktemp("demo")))
    tables = {name: read_table(e.source_path(), e) for name, e in catalog.items()}
    return catalog, tables


def test_catalogue_covers_every_open_class(demo) -> None:
    catalog, tables = demo
    assert {e.open_class for e in catalog.values()} == set(OpenClass)
    assert tables["outpatient_visits"].num_rows == 50_000


def test_every_dataset_passes_the_quality_report(demo) -> None:
    catalog, tables = demo
    for name, entry in catalog.items():
        report = quality_report(tables[name], entry)
        assert report.problems() == [], name


def test_patients_come_back(demo) -> None:
    visits = demo[1]["outpatient_visits"]
    assert len(set(visits["patient_id"].to_pylist())) < visits.num_rows / 2


def _identifiers(demo) -> tuple[list[str], list[str]]:
    catalog, tables = demo
    people, firms = [], []
    for name, entry in catalog.items():
        for column in entry.identifier_columns:
            values = tables[name][column].to_pylist()
            if all(is_resident_id(v) for v in values):
                people += values
            elif all(is_credit_code(v) for v in values):
                firms += values
    return people, firms


def test_no_real_person_or_company_number_can_appear(demo) -> None:
    people, firms = _identifiers(demo)
    assert len(people) > 50_000 and len(firms) == 5_000
    assert all(p[:2] not in REAL_PROVINCES for p in people)
    assert all(f[2:4] not in REAL_PROVINCES for f in firms)


def test_sex_agrees_with_the_odd_or_even_seventeenth_digit(demo) -> None:
    visits = demo[1]["outpatient_visits"].to_pylist()
    assert all((int(v["patient_id"][16]) % 2 == 1) == (v["sex"] == "男") for v in visits)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = generate_demo(tmp_path / "a")
    second = generate_demo(tmp_path / "b")
    assert first.keys() == second.keys()
    for name in first:
        assert pq.read_table(first[name]).equals(pq.read_table(second[name])), name
    assert not pq.read_table(generate_demo(tmp_path / "c", seed=1)["population"]).equals(
        pq.read_table(first["population"])
    )


@pytest.mark.parametrize("path", sorted(DEMO_AGREEMENTS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_demo_agreements_fit_the_catalogue(demo, path: Path) -> None:
    catalog = demo[0]
    agreement = load_agreement(path)
    validate_agreement(agreement, catalog)
    for name in agreement.datasets:
        assert catalog[name].provider == agreement.provider


def test_both_agreement_modes_are_shown() -> None:
    modes = {load_agreement(p).mode for p in DEMO_AGREEMENTS_DIR.glob("*.yaml")}
    assert modes == {"aggregate", "record"}
