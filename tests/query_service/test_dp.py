"""DP releases through the door: guarded with current suspensions, charged, recorded."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from tests.query_service.conftest import AGGREGATE, World, bearer

COUNTS = "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district"


def _dp(qs: TestClient, world: World, sql: str, epsilon: float):
    return qs.post(
        "/qs/dp", json={"sql": sql, "epsilon": epsilon}, headers=bearer(world.tokens[AGGREGATE])
    )


def test_release_is_charged_refusals_are_not_and_all_are_recorded(
    qs: TestClient, world: World
) -> None:
    first = _dp(qs, world, COUNTS, 0.5)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["columns"] == ["district", "n"] and len(body["rows"]) == 3
    assert body["epsilon_spent"] == 0.5 and body["epsilon_remaining"] == pytest.approx(0.5)

    blocked = _dp(
        qs, world, "SELECT patient_id, count(*) AS n FROM clinic_visits GROUP BY patient_id", 0.1
    )
    assert blocked.status_code == 403 and blocked.json()["rule"] == "QG-007"
    over = _dp(qs, world, COUNTS, 0.6)
    assert over.status_code == 403 and over.json()["rule"] == "dp-budget-exhausted"
    still = _dp(qs, world, COUNTS, 0.5)
    assert still.status_code == 200 and still.json()["epsilon_remaining"] == pytest.approx(0)

    with transaction(world.factory) as session:
        events = [
            json.loads(e.details)
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "dp.release").order_by(AuditEvent.seq)
            )
        ]
    assert [e.get("refused", {}).get("rule") for e in events] == [
        None,
        "QG-007",
        "dp-budget-exhausted",
        None,
    ]
    assert all("rows" not in e or isinstance(e["rows"], int) for e in events)
