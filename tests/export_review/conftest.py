"""A small fixed world for export review tests: one catalogue entry, one agreement,
generated visits in a Parquet file, and the agreement's DuckDB database built from it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from query_guard.compile import build_agreement_database
from sandbox.contracts import load_agreement, load_catalog

#: The pseudonym key of the test agreement database.
KEY = b"e" * 32

DISTRICTS = ["梁溪区", "锡山区", "惠山区", "滨湖区", "新吴区", "空白区"]  # the last has no rows

CATALOG_YAML = """\
name: outpatient_visits
title: Outpatient visits
provider: city-health-commission
domain: health
summary: One row per outpatient visit in public hospitals.
open_class: conditional
conditions: Applicants must hold an approved research agreement.
format: parquet
update_frequency: monthly
contact: data@health.example.gov
entity: patient_id
source: outpatient_visits.parquet
columns:
  - {name: patient_id, type: VARCHAR, sensitivity: identifier, description: resident ID number}
  - {name: visit_date, type: DATE, sensitivity: quasi_identifier}
  - {name: district, type: VARCHAR, sensitivity: quasi_identifier, values: %s}
  - {name: hospital, type: VARCHAR, sensitivity: none}
  - {name: cost, type: DOUBLE, sensitivity: none, bounds: [0, 1000]}
  - {name: age, type: INTEGER, sensitivity: quasi_identifier}
  - {name: diagnosis, type: VARCHAR, sensitivity: sensitive}
""" % ("[" + ", ".join(DISTRICTS) + "]")

AGREEMENT_YAML = """\
id: AGR-TEST-0001
title: Visits by district
provider: city-health-commission
researchers: [alice]
purpose: Count visits and costs per district.
mode: aggregate
valid_from: 2026-01-01
valid_until: 2027-12-31
datasets:
  outpatient_visits:
    columns: [visit_date, district, hospital, cost, age]
privacy:
  epsilon: 3.0
  delta: 1.0e-6
  max_contributions: %d
outputs: [dp_table, table, figure]
"""


def make_visits(n_patients: int = 2000, seed: int = 7) -> pd.DataFrame:
    """Fixed visits: every patient has 1-3 visits; hospital H-RARE has only 3 visits."""
    rng = np.random.default_rng(seed)
    visits = rng.integers(1, 4, n_patients)
    patient = np.repeat([f"P{i:06d}" for i in range(n_patients)], visits)
    n = len(patient)
    frame = pd.DataFrame(
        {
            "patient_id": patient,
            "visit_date": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 365, n), "D"),
            "district": rng.choice(DISTRICTS[:5], n),
            "hospital": rng.choice(["H-A", "H-B", "H-C"], n),
            "cost": rng.uniform(0, 1200, n).round(2),
            "age": rng.integers(0, 100, n).astype("int32"),
            "diagnosis": rng.choice(["J06", "I10", "E11"], n),
        }
    )
    frame.loc[:2, "hospital"] = "H-RARE"
    return frame


class World:
    """Paths and loaded contracts of one test world."""

    def __init__(self, root: Path, visits: pd.DataFrame, max_contributions: int):
        self.root = root
        self.visits = visits
        self.catalog_dir = root / "catalog"
        self.catalog_dir.mkdir()
        (self.catalog_dir / "outpatient_visits.yaml").write_text(CATALOG_YAML, encoding="utf-8")
        visits.to_parquet(self.catalog_dir / "outpatient_visits.parquet")
        self.agreement_path = root / "agreement.yaml"
        self.agreement_path.write_text(AGREEMENT_YAML % max_contributions, encoding="utf-8")
        self.catalog = load_catalog(self.catalog_dir)
        self.agreement = load_agreement(self.agreement_path)
        # Built by the provisioning code path: pseudonymised entity, contribution rank.
        self.duckdb_path = build_agreement_database(
            self.agreement, self.catalog, out_path=root / "agreement.duckdb", key=KEY
        )

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.duckdb_path), read_only=True)

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'sandbox.db'}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("world"), make_visits(), max_contributions=3)
