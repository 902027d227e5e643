"""Exports through the workspace's door: DP results become export candidates, files are
checked at once, and nothing leaves before a provider's review (issue 4, items 1-2)."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile

import httpx
import pytest
from fastapi.testclient import TestClient

from query_guard.client import ExportRefused, connect
from tests.control_plane.conftest import login
from tests.query_service.conftest import AGGREGATE, BOBS, World, bearer

COUNTS = "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district"


def test_dp_release_is_submitted_for_review_and_released_after_approval(
    qs: TestClient, world: World
) -> None:
    token = bearer(world.tokens[AGGREGATE])
    r = qs.post(
        "/qs/dp-exports", headers=token, json={"sql": COUNTS, "epsilon": 0.5, "purpose": "Table 1"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["export"]["status"] == "checked" and body["export"]["kind"] == "dp"
    assert body["release"]["epsilon_spent"] == 0.5
    rid = body["export"]["id"]
    assert qs.get(f"/api/exports/{rid}/bundle", headers=login(qs, "alice")).status_code == 404
    health = login(qs, "health")
    qs.post(f"/api/exports/{rid}/start_review", headers=health, json={})
    done = qs.post(f"/api/exports/{rid}/approve", headers=health, json={"reason": "ok"})
    assert done.json()["status"] == "released", done.text
    archive = zipfile.ZipFile(
        io.BytesIO(qs.get(f"/api/exports/{rid}/bundle", headers=login(qs, "alice")).content)
    )
    released = archive.read("files/dp_release.csv")
    assert released.startswith(codecs.BOM_UTF8)  # so that Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(released.decode("utf-8-sig"))))
    assert rows[0] == ["district", "n"] and len(rows) == 4
    assert [list(map(str, row)) for row in body["release"]["rows"]] == rows[1:]
    manifest = archive.read("manifest.json").decode()
    assert '"epsilon_remaining": 0.5' in manifest


def test_files_outside_the_output_forms_come_back_at_once(qs: TestClient, world: World) -> None:
    r = qs.post(
        "/qs/exports",
        headers=bearer(world.tokens[AGGREGATE]),
        data={"purpose": "Table 2", "queries": f'["{COUNTS}"]'},
        files=[("files", ("table.csv", b"district,n\nA,12\n"))],
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "returned"
    assert r.json()["checks"]["refused"]["rule"] == "export-output-form"
    mine = qs.get("/qs/exports", headers=bearer(world.tokens[AGGREGATE])).json()
    assert [e["id"] for e in mine] == [r.json()["id"]]
    assert qs.get("/qs/exports", headers=bearer(world.tokens[BOBS])).json() == []


def test_client_checks_before_submitting_and_submits_dp_results(
    live_url: str, world: World, tmp_path
) -> None:
    table = tmp_path / "table.csv"
    table.write_text("district,n\nA,12\n", encoding="utf-8")
    with connect(f"{live_url}/qs", world.tokens[AGGREGATE], progress=None) as db:
        verdict = db.check_export([table], "table")
        assert verdict["ok"] is False and verdict["refused"]["rule"] == "export-output-form"
        with pytest.raises(ExportRefused) as caught:
            db.export([table], purpose="Table 2", form="table", queries=[COUNTS])
        assert caught.value.rule == "export-output-form"
        assert db.dp(COUNTS, 0.25)["epsilon_spent"] == 0.25  # shown, not yet an export
        submitted = db.dp(COUNTS, 0.25, purpose="Table 1")
        assert submitted["export"]["status"] == "checked"
    mine = qs_get_exports(live_url, world)
    assert [e["kind"] for e in mine] == ["dp"]  # the refused files were never submitted


def qs_get_exports(live_url: str, world: World) -> list[dict]:
    return httpx.get(f"{live_url}/qs/exports", headers=bearer(world.tokens[AGGREGATE])).json()
