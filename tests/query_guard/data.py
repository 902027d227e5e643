"""Synthetic data for the guard's tests: a catalogue, Parquet files and agreements.

Canary values are planted where no query may ever reach them: a hidden column,
rows outside the row filter, and the raw resident ID numbers (which the build
replaces by pseudonyms).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

HIDDEN_CANARY = "CANARY-HIDDEN-DIAGNOSIS"
FILTERED_CANARY = "CANARY-FILTERED-DISTRICT"
SMALL_DISTRICT = "Tiny"
DISTRICTS = ["Liangxi", "Xishan", "Huishan", "Binhu"]
SMALL_GROUP = 3  # patients in the small district, below any sensible min_group_size


def resident_id(i: int) -> str:
    """An 18-character synthetic resident ID number (not checksummed)."""
    return f"3202{i:010d}{i % 9973:04d}"


def visits_table(n_patients: int = 60, seed: int = 7) -> tuple[pa.Table, list[str]]:
    rng = random.Random(seed)
    rows: dict[str, list] = {
        k: [] for k in ("patient_id", "visit_date", "district", "cost", "diagnosis")
    }
    ids = [resident_id(i) for i in range(n_patients + SMALL_GROUP)]

    def add(pid: str, day: date, district: str, diagnosis: str) -> None:
        rows["patient_id"].append(pid)
        rows["visit_date"].append(day.isoformat())
        rows["district"].append(district)
        rows["cost"].append(round(rng.uniform(10, 900), 2))
        rows["diagnosis"].append(diagnosis)

    for i, pid in enumerate(ids[:n_patients]):
        for _ in range(rng.randint(1, 4)):
            add(
                pid,
                date(2024, 1, 1) + timedelta(days=rng.randint(0, 500)),
                DISTRICTS[i % len(DISTRICTS)],
                HIDDEN_CANARY,
            )
        add(pid, date(2023, 6, 1), FILTERED_CANARY, HIDDEN_CANARY)  # removed by the row filter
    for pid in ids[n_patients:]:
        add(pid, date(2024, 3, 1), SMALL_DISTRICT, HIDDEN_CANARY)
    return pa.table(rows), ids


def people_table(ids: list[str]) -> pa.Table:
    return pa.table(
        {
            "person_id": ids,
            "age": [20 + i % 60 for i in range(len(ids))],
            "secret_note": [HIDDEN_CANARY] * len(ids),
        }
    )


VISITS_ENTRY = {
    "name": "visits",
    "title": "Outpatient visits",
    "provider": "health",
    "domain": "health",
    "summary": "One row per visit.",
    "open_class": "conditional",
    "conditions": "Approved researchers only.",
    "format": "parquet",
    "update_frequency": "monthly",
    "contact": "data@example.gov",
    "entity": "patient_id",
    "source": "visits.parquet",
    "columns": [
        {"name": "patient_id", "type": "VARCHAR", "sensitivity": "identifier"},
        {"name": "visit_date", "type": "DATE", "sensitivity": "quasi_identifier"},
        {"name": "district", "type": "VARCHAR", "sensitivity": "quasi_identifier"},
        {"name": "cost", "type": "DOUBLE", "bounds": [0, 1000]},
        {"name": "diagnosis", "type": "VARCHAR", "sensitivity": "sensitive"},
    ],
}
PEOPLE_ENTRY = {
    "name": "people",
    "title": "Residents",
    "provider": "civil",
    "domain": "population",
    "summary": "One row per resident.",
    "open_class": "conditional",
    "conditions": "Approved researchers only.",
    "format": "csv",
    "update_frequency": "annual",
    "contact": "data@example.gov",
    "entity": "person_id",
    "source": "people.csv",
    "columns": [
        {"name": "person_id", "type": "VARCHAR", "sensitivity": "identifier"},
        {"name": "age", "type": "INTEGER", "sensitivity": "quasi_identifier"},
        {"name": "secret_note", "type": "VARCHAR", "sensitivity": "sensitive"},
    ],
}


def agreement_yaml(mode: str = "aggregate", agreement_id: str = "AGR-T-1") -> str:
    return yaml.safe_dump(
        {
            "id": agreement_id,
            "title": "Visits by district",
            "provider": "health",
            "researchers": ["alice"],
            "purpose": "Count visits by district and month.",
            "mode": mode,
            "valid_from": "2026-01-01",
            "valid_until": "2027-12-31",
            "datasets": {
                "visits": {
                    "columns": ["patient_id", "visit_date", "district", "cost"],
                    "row_filter": "visit_date >= DATE '2024-01-01'",
                },
                "people": {"columns": ["person_id", "age"]},
            },
            "joins": [["visits.patient_id", "people.person_id"]],
            "disclosure": {"min_group_size": 5, "max_result_rows": 100},
        },
        sort_keys=False,
    )


def write_catalog(root: Path) -> list[str]:
    """Write the catalogue YAML and source files under ``root``; return the raw IDs."""
    catalog = root / "catalog"
    catalog.mkdir(parents=True)
    visits, ids = visits_table()
    pq.write_table(visits, catalog / "visits.parquet")
    people_table(ids).to_pandas().to_csv(catalog / "people.csv", index=False)
    for entry in (VISITS_ENTRY, PEOPLE_ENTRY):
        (catalog / f"{entry['name']}.yaml").write_text(yaml.safe_dump(entry), encoding="utf-8")
    for mode in ("aggregate", "record"):
        (root / f"agreement-{mode}.yaml").write_text(agreement_yaml(mode), encoding="utf-8")
    return ids
