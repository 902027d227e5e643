"""A table handed in at a query worker's door is re-checked from its underlying rows on the
worker's own open connection to the agreement's DuckDB file: DuckDB refuses a second
connection to a file open with other settings, so opening it again failed as soon as a
query had run (the check then said 'query-failed' and nothing was checked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from query_guard.client import connect
from sandbox.accounts.service import issue_workspace_token
from sandbox.agreements.service import get_agreement, import_agreement
from sandbox.apps.worker import create_worker_app
from sandbox.db.base import transaction
from sandbox.provisioning.service import provision
from tests.control_plane.helpers import agreement
from tests.query_service.conftest import World, serve
from tests.web.test_pages import sign_in

TABLES = "AGR-QS-RECHECK"
COUNTS = "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district"


@pytest.fixture
def table_token(world: World) -> str:
    """A workspace token for an agreement letting checked tables leave."""
    columns = {"clinic_visits": {"columns": ["patient_id", "district", "cost"]}}
    spec = agreement(id=TABLES, datasets=columns, outputs=["table"])
    with transaction(world.factory) as session:
        import_agreement(session=session, actor=world.users["health"], agreement=spec)
        provision(session=session, settings=world.settings, actor=world.users["ops"],
                  agreement_id=TABLES)  # fmt: skip
        token, _ = issue_workspace_token(
            session, world.users["alice"], get_agreement(session, TABLES)
        )
    return token


@pytest.fixture
def worker_url(world: World, table_token: str) -> Iterator[str]:
    """The agreement's query worker on a real loopback socket."""
    yield from serve(create_worker_app(world.settings, TABLES))


def _checked_from_rows(tables: list[dict]) -> None:
    assert tables and all(t["file"] == "table.csv" for t in tables)
    assert [t["column"] for t in tables] == ["n"]
    assert all("why_not" not in t and t["status"] == "pass" for t in tables), tables


def test_a_table_is_rechecked_at_the_door_after_a_query_ran_in_the_worker(
    worker_url: str, table_token: str, tmp_path: Path
) -> None:
    table = tmp_path / "table.csv"
    with connect(f"{worker_url}/qs", table_token, progress=None) as db:
        db.sql(COUNTS).to_csv(table, index=False)  # the worker now holds the file open
        verdict = db.check_export([table], "table", queries=[COUNTS])
        assert verdict["ok"] is True, verdict
        _checked_from_rows(verdict["checks"]["tables"])
        submitted = db.export([table], purpose="Table 1", form="table", queries=[COUNTS])
        assert submitted["status"] == "checked", submitted
        _checked_from_rows(submitted["checks"]["tables"])
        again = db.sql(COUNTS)  # the worker's own connection still answers
    assert sorted(again["district"]) == sorted(
        line.split(",")[0] for line in table.read_text().splitlines()[1:]
    )


def test_the_review_page_rechecks_in_a_platform_that_served_the_query(
    live_url: str, table_token: str, tmp_path: Path
) -> None:
    """Single-process mode: the platform's own /qs routes hold the file open, and the
    provider's review page in the same process re-checks through that connection too."""
    table = tmp_path / "table.csv"
    with connect(f"{live_url}/qs", table_token, progress=None) as db:
        db.sql(COUNTS).to_csv(table, index=False)
        submitted = db.export([table], purpose="Table 1", form="table", queries=[COUNTS])
    _checked_from_rows(submitted["checks"]["tables"])
    with httpx.Client(base_url=live_url) as web:
        sign_in(web, "health")  # type: ignore[arg-type]
        page = web.get(f"/provider/exports/{submitted['id']}").text
    assert 'data-file="table.csv"' in page and "rerun-derived" in page
    assert "rerun-not-derived" not in page
