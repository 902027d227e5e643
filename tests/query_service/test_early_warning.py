"""Each early warning is raised by real queries through the service, listed and acknowledged."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from query_guard.early_warning.detect import BULK_FACTOR, REPEATED_BLOCKS
from query_guard.early_warning.models import DayRows
from sandbox.db.base import transaction
from tests.query_service.conftest import AGGREGATE, RECORD, RECORD_MAX_ROWS, World, bearer, login


def _run(qs: TestClient, world: World, agreement_id: str, sql: str) -> int:
    r = qs.post("/qs/query", json={"sql": sql}, headers=bearer(world.tokens[agreement_id]))
    return r.status_code


def _alerts(qs: TestClient, who: str) -> list[dict]:
    r = qs.get("/api/alerts", headers=login(qs, who))
    assert r.status_code == 200, r.text
    return r.json()


def test_repeated_blocks_raise_one_alert_listed_for_the_provider(
    qs: TestClient, world: World
) -> None:
    for _ in range(REPEATED_BLOCKS - 1):
        assert _run(qs, world, AGGREGATE, "SELECT patient_id FROM clinic_visits") == 403
    assert _alerts(qs, "ops") == []
    for _ in range(2):  # the threshold is reached, then one more: still one alert
        assert _run(qs, world, AGGREGATE, "SELECT patient_id FROM clinic_visits") == 403
    [alert] = _alerts(qs, "health")
    assert alert["kind"] == "repeated_blocks" and alert["agreement_id"] == AGGREGATE
    assert alert["researcher"] == "alice" and alert["details"]["blocks"] == REPEATED_BLOCKS
    assert _alerts(qs, "market") == []  # another provider's agreement is not shown
    assert qs.get("/api/alerts", headers=login(qs, "alice")).status_code == 403

    ack = qs.post(f"/api/alerts/{alert['id']}/acknowledge", headers=login(qs, "health"))
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    again = qs.post(f"/api/alerts/{alert['id']}/acknowledge", headers=login(qs, "ops"))
    assert again.status_code == 409
    other = qs.post(f"/api/alerts/{alert['id']}/acknowledge", headers=login(qs, "market"))
    assert other.status_code == 404


def test_differencing_by_one_narrow_predicate_is_flagged(qs: TestClient, world: World) -> None:
    base = "SELECT count(*) AS n, sum(cost) AS total FROM clinic_visits WHERE cost > 0"
    assert _run(qs, world, AGGREGATE, base) == 200
    assert _run(qs, world, AGGREGATE, base.replace("cost > 0", "cost > 1")) == 200
    assert _alerts(qs, "ops") == []  # a different literal alone is ordinary analysis
    assert _run(qs, world, AGGREGATE, base + " AND district = '锡山区'") == 200
    [alert] = _alerts(qs, "ops")
    assert alert["kind"] == "differencing" and alert["details"]["predicates_differing"] == 1
    assert "锡山区" not in str(alert["details"])


def _rows_query(i: int) -> str:
    return f"SELECT district, cost FROM clinic_visits ORDER BY cost OFFSET {i}"


def test_bulk_extraction_in_record_mode_is_flagged(qs: TestClient, world: World) -> None:
    queries = BULK_FACTOR + 1  # each returns max_result_rows rows
    for i in range(queries):
        assert _run(qs, world, RECORD, _rows_query(i)) == 200
    [alert] = _alerts(qs, "health")
    assert alert["kind"] == "bulk_extraction" and alert["agreement_id"] == RECORD
    assert alert["details"]["rows_today"] == queries * RECORD_MAX_ROWS
    assert alert["details"]["threshold"] == BULK_FACTOR * RECORD_MAX_ROWS


def test_a_day_without_its_running_total_counts_from_the_log(qs: TestClient, world: World) -> None:
    """As on the day the platform is upgraded to keep the total: the rows returned earlier
    that day still count towards bulk extraction."""
    for i in range(BULK_FACTOR):
        assert _run(qs, world, RECORD, _rows_query(i)) == 200
    with transaction(world.factory) as session:
        [total] = session.scalars(select(DayRows).where(DayRows.agreement_id == RECORD)).all()
        assert total.rows == BULK_FACTOR * RECORD_MAX_ROWS
        session.delete(total)
    assert _alerts(qs, "health") == []
    assert _run(qs, world, RECORD, _rows_query(BULK_FACTOR)) == 200
    [alert] = _alerts(qs, "health")
    assert alert["details"]["rows_today"] == (BULK_FACTOR + 1) * RECORD_MAX_ROWS
