from __future__ import annotations

import pytest

from sandbox.contracts import CatalogEntry


def make_entry(**column_overrides: str) -> CatalogEntry:
    """A small outpatient-like entry; keyword arguments change a column's sensitivity."""
    columns = [
        {"name": "patient_id", "type": "VARCHAR", "sensitivity": "identifier"},
        {"name": "visit_date", "type": "DATE", "sensitivity": "quasi_identifier"},
        {"name": "district", "type": "VARCHAR", "values": ["梁溪区", "滨湖区"]},
        {"name": "cost", "type": "DOUBLE", "bounds": [0, 1000]},
        {"name": "visits", "type": "INTEGER"},
    ]
    for column in columns:
        if column["name"] in column_overrides:
            column["sensitivity"] = column_overrides[column["name"]]
    return CatalogEntry.model_validate(
        {
            "name": "visits_test",
            "title": "Visits",
            "provider": "health",
            "domain": "health",
            "summary": "test",
            "open_class": "conditional",
            "conditions": "sandbox only",
            "update_frequency": "monthly",
            "contact": "a@example.org",
            "entity": "patient_id",
            "columns": columns,
        }
    )


@pytest.fixture
def entry() -> CatalogEntry:
    return make_entry()
