"""A published catalogue for preview tests, on SQLite and on PostgreSQL.

``hospital_visits`` is conditional, with every kind of column the preview
treats differently: resident IDs (the entity) and credit codes of the
non-existent region 990000, public values, bounded numbers, dates, a boolean
and free text. Each patient has 1-3 visits, so with ``max_contributions`` 3
the contribution bound keeps every row and the true marginals are exact.
``secret_visits`` is non-open and ``open_visits`` unconditional.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from sandbox.catalog.identifiers import CREDIT_CODE_CHARSET, credit_code_check_char
from tests.control_plane.conftest import (  # noqa: F401  (fixtures)
    client,
    db_url,
    factory,
    resident_id,
    settings,
    users,
)
from tests.control_plane.helpers import publish_all

DISTRICTS = ["梁溪区", "锡山区", "惠山区"]
MONTHS = [date(2024, m, 1) for m in range(1, 7)]


def _credit_code(rng: random.Random) -> str:
    body = "12990000" + "".join(rng.choice(CREDIT_CODE_CHARSET) for _ in range(9))
    return body + credit_code_check_char(body)


def visits(seed: int = 11, patients: int = 1500) -> list[dict]:
    rng = random.Random(seed)
    clinics = [_credit_code(rng) for _ in range(20)]
    rows = []
    for _ in range(patients):
        pid = resident_id(rng)
        for _ in range(rng.randint(1, 3)):
            month = rng.choices(MONTHS, weights=[5, 4, 3, 2, 1, 1])[0]
            rows.append(
                {
                    "patient_id": pid,
                    "clinic_code": rng.choice(clinics),
                    "visit_date": month + timedelta(days=rng.randint(0, 27)),
                    "district": rng.choices(DISTRICTS, weights=[6, 3, 1])[0],
                    "age": min(99, int(rng.expovariate(1 / 30))),
                    "cost": round(
                        rng.uniform(0, 300) if rng.random() < 0.7 else rng.uniform(600, 1000), 2
                    ),
                    "insured": rng.random() < 0.8,
                    "note": f"病历备注 {pid[-6:]}-{rng.randint(0, 10**9)}",
                }
            )
    return rows


COLUMNS = [
    {"name": "patient_id", "type": "VARCHAR", "sensitivity": "identifier"},
    {"name": "clinic_code", "type": "VARCHAR", "sensitivity": "identifier"},
    {"name": "visit_date", "type": "DATE", "sensitivity": "quasi_identifier"},
    {"name": "district", "type": "VARCHAR", "sensitivity": "quasi_identifier", "values": DISTRICTS},
    {"name": "age", "type": "INTEGER", "sensitivity": "quasi_identifier", "bounds": [0, 100]},
    {"name": "cost", "type": "DOUBLE", "sensitivity": "none", "bounds": [0, 1000]},
    {"name": "insured", "type": "BOOLEAN", "sensitivity": "none"},
    {"name": "note", "type": "VARCHAR", "sensitivity": "sensitive"},
]


@pytest.fixture
def preview_catalog(tmp_path: Path) -> Path:
    d = tmp_path / "preview_catalog"
    d.mkdir()
    rows = visits()
    pq.write_table(pa.Table.from_pylist(rows), d / "visits.parquet")
    common = {
        "provider": "city-health-commission",
        "domain": "health",
        "summary": "Visits to hospitals.",
        "update_frequency": "monthly",
        "contact": "data@health.example.invalid",
        "entity": "patient_id",
        "source": "visits.parquet",
        "columns": COLUMNS,
        "conditions": "Accredited research institutions with a security certificate.",
    }
    for name, open_class in (
        ("hospital_visits", "conditional"),
        ("secret_visits", "non_open"),
        ("open_visits", "unconditional"),
    ):
        doc = {
            "name": name,
            "title": name.replace("_", " ").title(),
            "open_class": open_class,
            **common,
        }
        (d / f"{name}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return d


@pytest.fixture
def published(factory, users, settings, preview_catalog):  # noqa: ANN001, ANN201, F811
    publish_all(factory, users, settings, preview_catalog)
    return visits()
