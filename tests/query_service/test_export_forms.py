"""Every output form the agreement allows can leave, through the workspace's door (issue 13,
item 3): a figure the platform draws from a DP release into the signed bundle (and
``sandbox release verify`` accepts it), a table, code (a notebook that still holds
outputs is refused), and a form the agreement does not name refused with its clause."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from export_review.ledger import EPSILON_UNIT, PrivacyCharge
from export_review.signing import load_or_create_signing_key, public_key_pem, signing_key_path
from query_guard.client import ExportRefused, QueryRefused, connect
from sandbox.accounts.service import issue_workspace_token
from sandbox.agreements.service import get_agreement, import_agreement
from sandbox.db.base import transaction
from sandbox.provisioning.service import provision
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement
from tests.query_service.conftest import AGGREGATE, World

FORMS = "AGR-QS-FORMS"
COUNTS = "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district"
CHART = {"kind": "bar", "x": "district", "y": "n", "title": "门诊量 Visits", "y_label": "visits"}


@pytest.fixture
def forms_token(world: World) -> str:
    """A workspace token for an agreement letting DP tables, tables, figures and code leave."""
    columns = {"clinic_visits": {"columns": ["patient_id", "district", "cost"]}}
    spec = agreement(id=FORMS, datasets=columns, outputs=["dp_table", "table", "figure", "code"])
    with transaction(world.factory) as session:
        import_agreement(session=session, actor=world.users["health"], agreement=spec)
        provision(session=session, settings=world.settings, actor=world.users["ops"],
                  agreement_id=FORMS)  # fmt: skip
        token, _ = issue_workspace_token(
            session, world.users["alice"], get_agreement(session, FORMS)
        )
    return token


def _release(live_url: str, request_id: int, into: Path) -> Path:
    """The provider approves; alice downloads the signed bundle and unpacks it into ``into``."""
    with httpx.Client(base_url=live_url) as http:
        health, alice = (login(http, who) for who in ("health", "alice"))  # type: ignore[arg-type]
        http.post(f"/api/exports/{request_id}/start_review", headers=health, json={})
        done = http.post(
            f"/api/exports/{request_id}/approve", headers=health, json={"reason": "ok"}
        )
        assert done.json()["status"] == "released", done.text
        bundle = http.get(f"/api/exports/{request_id}/bundle", headers=alice)
    zipfile.ZipFile(io.BytesIO(bundle.content)).extractall(into)
    return into


def _spent(world: World, agreement_id: str) -> float:
    """ε charged to the agreement so far (0 when nothing was ever charged)."""
    with transaction(world.factory) as session:
        charges = session.scalars(
            select(PrivacyCharge.epsilon).where(PrivacyCharge.agreement_id == agreement_id)
        ).all()
    return sum(charges) / EPSILON_UNIT


def _verify(world: World, bundle: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """``sandbox release verify`` as a real process, with the platform's public key."""
    key = load_or_create_signing_key(signing_key_path(world.settings.keys_dir))
    pem = tmp_path / "release.pem"
    pem.write_bytes(public_key_pem(key))
    command = Path(sys.executable).parent / "sandbox"
    return subprocess.run(
        [str(command), "release", "verify", str(bundle), "--public-key", str(pem)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_figure_of_a_dp_release_leaves_drawn_by_the_platform(
    live_url: str, world: World, forms_token: str, tmp_path: Path
) -> None:
    with connect(f"{live_url}/qs", forms_token, progress=None) as db:
        forms = db.output_forms()
        assert forms["form"].tolist() == ["dp_table", "table", "figure", "code"]
        assert all(forms["zh"].str.len() > 5) and all(forms["en"].str.len() > 20)
        with pytest.raises(QueryRefused) as wrong:  # refused before anything is charged
            db.dp(COUNTS, 0.5, purpose="Figure 1", chart={**CHART, "y": "visits"})
        assert wrong.value.rule == "export-chart" and "district, n" in wrong.value.message
        answer = db.dp(COUNTS, 0.5, purpose="Figure 1", chart=CHART)
    assert _spent(world, FORMS) == pytest.approx(0.5)  # the refused chart charged nothing
    export = answer["export"]
    assert export["form"] == "figure" and export["kind"] == "dp" and export["status"] == "checked"
    bundle = _release(live_url, export["id"], tmp_path / "bundle")
    files = bundle / "files"
    assert sorted(p.name for p in files.iterdir()) == [
        "chart.json", "dp_release.csv", "figure.png", "figure.svg",
    ]  # fmt: skip
    assert (files / "figure.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = (files / "figure.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "<script" not in svg and "<text" not in svg  # text drawn as paths
    assert (
        json.loads((files / "chart.json").read_text(encoding="utf-8"))["title"] == "门诊量 Visits"
    )
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["checks"]["form"] == "figure" and manifest["dp"]["epsilon_spent"] == 0.5
    verified = _verify(world, bundle, tmp_path)
    assert verified.returncode == 0 and "ok:" in verified.stdout, verified.stderr
    (files / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8)  # someone's own image
    tampered = _verify(world, bundle, tmp_path)
    assert tampered.returncode == 1 and "file changed: files/figure.png" in tampered.stderr


def _notebook(outputs: list) -> dict:
    cell = {"cell_type": "code", "metadata": {}, "source": "df = db.sql(SQL)",
            "execution_count": 1 if outputs else None, "outputs": outputs}  # fmt: skip
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}


def test_code_leaves_without_outputs_and_tables_are_checked(
    live_url: str, world: World, forms_token: str, tmp_path: Path
) -> None:
    shown = tmp_path / "shown" / "analysis.ipynb"
    shown.parent.mkdir()
    shown.write_text(json.dumps(_notebook([{"output_type": "stream", "name": "stdout",
                                            "text": "梁溪区 131\n"}])))  # fmt: skip
    clean, script = tmp_path / "analysis.ipynb", tmp_path / "query.sql"
    clean.write_text(json.dumps(_notebook([])))
    script.write_text(COUNTS + ";\n")
    table = tmp_path / "table.csv"
    with connect(f"{live_url}/qs", forms_token, progress=None) as db:
        verdict = db.check_export([shown], "code")
        assert verdict["ok"] is False
        assert verdict["refused"]["rule"] == "export-notebook-outputs"
        assert "cell 1 still holds outputs" in verdict["refused"]["error"]
        with pytest.raises(ExportRefused) as caught:
            db.export([shown], purpose="Code for the paper", form="code")
        assert caught.value.rule == "export-notebook-outputs"
        code = db.export([clean, script], purpose="Code for the paper", form="code")
        assert code["status"] == "checked" and code["form"] == "code"
        db.sql(COUNTS).to_csv(table, index=False)
        mixed = db.check_export([table, script], "table", queries=[COUNTS])
        assert mixed["refused"]["rule"] == "export-file-form"  # one form per request
        checked = db.export([table], purpose="Table 1", form="table", queries=[COUNTS])
        assert checked["status"] == "checked" and checked["checks"]["tables"]
    bundle = _release(live_url, code["id"], tmp_path / "bundle")
    assert sorted(p.name for p in (bundle / "files").iterdir()) == ["analysis.ipynb", "query.sql"]
    assert (bundle / "files" / "analysis.ipynb").read_bytes() == clean.read_bytes()
    assert _verify(world, bundle, tmp_path).returncode == 0


def test_forms_the_agreement_does_not_name_are_refused_with_the_clause(
    live_url: str, world: World, tmp_path: Path
) -> None:
    """The AGGREGATE agreement lets only DP tables leave."""
    script = tmp_path / "query.sql"
    script.write_text(COUNTS + ";\n")
    with connect(f"{live_url}/qs", world.tokens[AGGREGATE], progress=None) as db:
        assert db.output_forms()["form"].tolist() == ["dp_table"]
        with pytest.raises(ExportRefused) as code:
            db.export([script], purpose="Code", form="code")
        assert code.value.rule == "export-output-form"
        assert code.value.article == "agreement clause outputs"
        assert "lets dp_table leave, not code" in code.value.message
        with pytest.raises(QueryRefused) as figure:
            db.dp(COUNTS, 0.5, purpose="Figure 1", chart=CHART)
        assert figure.value.rule == "export-output-form"
        with pytest.raises(ExportRefused) as unknown:
            db.export([script], purpose="Code", form="poster")
        assert unknown.value.rule == "export-output-form" and "code" in unknown.value.message
    assert _spent(world, AGGREGATE) == 0
