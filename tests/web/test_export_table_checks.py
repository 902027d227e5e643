"""Tables are checked from the rows behind them when they are submitted: cells that must be
suppressed come back to the author at once, with the rules that fired (issue 4, item 3)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from export_review.models import ExportRequest
from sandbox.db.base import transaction
from tests.web.conftest import COUNT_QUERY, SMALL_QUERY, table_csv
from tests.web.test_exports import export_id, post_export
from tests.web.test_pages import sign_in


def _submitted(client, agreement_id, files, queries, factory) -> ExportRequest:  # noqa: ANN001
    sign_in(client, "alice")
    _, location = post_export(client, agreement_id, files, queries=queries)
    with transaction(factory) as session:
        return session.get_one(ExportRequest, export_id(location))


def test_small_cells_come_back_and_safe_tables_pass(
    client: TestClient, export_agreement: str, catalog_dir: Path, factory: sessionmaker[Session]
) -> None:
    small = table_csv(catalog_dir, SMALL_QUERY).encode()
    returned = _submitted(client, export_agreement, {"small.csv": small}, [SMALL_QUERY], factory)
    assert returned.status == "returned"
    refused = returned.checks["refused"]
    assert refused["rule"] == "export-disclosive-cells" and "threshold" in refused["error"]
    assert refused["article"].startswith("agreement clause disclosure")

    safe = table_csv(catalog_dir, COUNT_QUERY).encode()
    checked = _submitted(client, export_agreement, {"visits.csv": safe}, [COUNT_QUERY], factory)
    assert checked.status == "checked"
    [table] = checked.checks["tables"]
    assert table["file"] == "visits.csv" and table["status"] == "pass"
    assert table["flagged"]["threshold"] == 0
