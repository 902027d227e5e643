"""Export requests from draft to signed release (issue 4, items 1, 4, 5): states as data,
provider reviewers, the author never reviews, two independent reviewers, bundles verify."""

from __future__ import annotations

import codecs
import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from export_review.bundle import verify_bundle
from export_review.signing import load_or_create_signing_key, public_key_pem, signing_key_path
from export_review.workflow import TRANSITIONS, check_user_can_review, state_diagram
from sandbox.accounts.models import Role
from sandbox.accounts.service import create_user
from sandbox.agreements.service import import_agreement
from sandbox.cli.release import release_app
from sandbox.contracts import Review
from sandbox.db.base import transaction
from sandbox.errors import PermissionDenied
from tests.control_plane.conftest import PASSWORD, PROVIDER, login
from tests.control_plane.helpers import agreement, publish_all

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
TABLE = "district,visits\n梁溪区,120\n锡山区,98\n"
CHART = {"kind": "bar", "x": "district", "y": "visits", "title": "门诊量 Visits by district"}


@pytest.fixture
def world(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        create_user(
            session=session,
            username="health2",
            password=PASSWORD,
            role=Role.provider,
            display_name="Second reviewer",
            organisation=PROVIDER,
        )
        import_agreement(
            session=session,
            actor=users["health"],
            agreement=agreement(
                outputs=["dp_table", "table", "figure"], review=Review(reviewers=2)
            ),
        )
        import_agreement(
            session=session,
            actor=users["health"],
            agreement=agreement(id="AGR-T-0002", outputs=["dp_table"]),
        )
    return users


def _draft(
    client: TestClient, agreement_id: str, files: dict[str, bytes], chart: dict | None = None
) -> int:
    """A draft by alice: in the form its files name, or a figure of ``chart``."""
    figure = {"form": "figure", "chart": json.dumps(chart)} if chart else {}
    r = client.post(
        "/api/exports",
        headers=login(client, "alice"),
        data={
            "agreement_id": agreement_id,
            "purpose": "Figure 2 of the report",
            "queries": '["SELECT district, COUNT(*) FROM clinic_visits GROUP BY ALL"]',
            **figure,
        },
        files=[("files", (name, data)) for name, data in files.items()],
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_output_forms_not_allowed_come_back_to_the_author(client, world):
    rid = _draft(client, "AGR-T-0002", {"table.csv": TABLE.encode()})
    r = client.post(f"/api/exports/{rid}/submit", headers=login(client, "alice"))
    assert r.json()["status"] == "returned"
    assert r.json()["checks"]["refused"]["rule"] == "export-output-form"
    assert "tables of statistics leave as DP releases" in r.json()["status_reason"]


def test_a_researchers_image_never_leaves_and_a_figure_needs_one_table(client, world):
    alice = login(client, "alice")
    rid = _draft(client, "AGR-T-0001", {"table.csv": TABLE.encode(), "fig.png": PNG}, CHART)
    r = client.post(f"/api/exports/{rid}/submit", headers=alice)
    assert r.json()["status"] == "returned"
    assert r.json()["checks"]["refused"]["rule"] == "export-file-type"
    assert "drawn by the platform" in r.json()["status_reason"]
    rid = _draft(client, "AGR-T-0001", {"table.csv": TABLE.encode(), "a.py": b"x = 1\n"}, CHART)
    r = client.post(f"/api/exports/{rid}/submit", headers=alice)
    assert r.json()["checks"]["refused"]["rule"] == "export-file-form"
    two = {"a.csv": TABLE.encode(), "b.csv": TABLE.encode()}
    r = client.post(
        f"/api/exports/{_draft(client, 'AGR-T-0001', two, CHART)}/submit", headers=alice
    )
    assert r.json()["checks"]["refused"]["rule"] == "export-figure-data"
    wrong = {**CHART, "y": "n"}
    r = client.post(
        f"/api/exports/{_draft(client, 'AGR-T-0001', {'t.csv': TABLE.encode()}, wrong)}/submit",
        headers=alice,
    )
    assert r.json()["checks"]["refused"]["rule"] == "export-chart"
    assert "district, visits" in r.json()["status_reason"]  # the columns there are
    # A specification that is not one is refused before anything is stored.
    bad = client.post(
        "/api/exports",
        headers=alice,
        data={"agreement_id": "AGR-T-0001", "purpose": "x", "form": "figure",
              "chart": json.dumps({**CHART, "colour": "red"})},
        files=[("files", ("t.csv", TABLE.encode()))],
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["rule"] == "export-chart", bad.text
    assert "colour" in bad.json()["error"]


def test_a_table_leaves_as_csv_with_a_bom_and_the_bundle_verifies(client, world, settings):
    """Excel opens a CSV file as UTF-8 only after the byte-order mark; the file is kept with it
    when submitted, so the reviewers see what leaves and the manifest signs it."""
    alice = login(client, "alice")
    rid = _draft(client, "AGR-T-0001", {"table.csv": TABLE.encode()})  # as pandas writes it
    assert client.post(f"/api/exports/{rid}/submit", headers=alice).json()["status"] == "checked"
    health, health2 = login(client, "health"), login(client, "health2")
    reviewed = client.get(f"/api/exports/{rid}/files/table.csv", headers=health)
    assert reviewed.content == codecs.BOM_UTF8 + TABLE.encode()
    client.post(f"/api/exports/{rid}/start_review", headers=health, json={})
    client.post(f"/api/exports/{rid}/approve", headers=health, json={"reason": "fine"})
    done = client.post(f"/api/exports/{rid}/approve", headers=health2, json={"reason": "fine"})
    assert done.json()["status"] == "released", done.text
    out = Path(settings.data_dir) / "download"
    zipfile.ZipFile(io.BytesIO(client.get(f"/api/exports/{rid}/bundle", headers=alice).content)
                    ).extractall(out)  # fmt: skip
    assert (out / "files" / "table.csv").read_bytes() == reviewed.content
    assert (out / "files" / "table.csv").read_text(encoding="utf-8-sig") == TABLE
    public = out.parent / "release.pub"
    public.write_bytes(
        public_key_pem(load_or_create_signing_key(signing_key_path(settings.keys_dir)))
    )
    verified = CliRunner().invoke(release_app, ["verify", str(out), "--public-key", str(public)])
    assert verified.exit_code == 0, verified.output


def test_two_independent_provider_reviewers_then_a_signed_bundle(client, world, settings):
    """A figure leaves as its table, its specification and the platform's drawing of it."""
    alice, health, health2 = (login(client, u) for u in ("alice", "health", "health2"))
    rid = _draft(client, "AGR-T-0001", {"table.csv": TABLE.encode()}, CHART)
    assert client.post(f"/api/exports/{rid}/submit", headers=alice).json()["status"] == "checked"
    market = client.post(
        f"/api/exports/{rid}/start_review", headers=login(client, "market"), json={}
    )
    assert market.status_code == 404  # another provider cannot even see the agreement
    assert client.post(f"/api/exports/{rid}/approve", headers=alice, json={}).status_code == 403
    assert (
        client.post(f"/api/exports/{rid}/start_review", headers=health, json={}).json()["status"]
        == "in_review"
    )
    r = client.post(f"/api/exports/{rid}/return", headers=health, json={"reason": " "})
    assert r.status_code == 422 and r.json()["rule"] == "export-reason"
    assert (
        client.post(f"/api/exports/{rid}/approve", headers=health, json={}).json()["status"]
        == "in_review"
    )
    again = client.post(f"/api/exports/{rid}/approve", headers=health, json={})
    assert again.status_code == 403 and again.json()["rule"] == "export-independent-reviewers"
    done = client.post(f"/api/exports/{rid}/approve", headers=health2, json={"reason": "fine"})
    assert done.json()["status"] == "released", done.text
    archive = client.get(f"/api/exports/{rid}/bundle", headers=alice)
    assert archive.status_code == 200
    out = Path(settings.data_dir) / "download"
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(out)
    public = load_or_create_signing_key(signing_key_path(settings.keys_dir)).public_key()
    assert verify_bundle(out, public) == []
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    assert "Shanghai Art.25" in manifest and '"clinic_visits"' in manifest
    assert sorted(p.name for p in (out / "files").iterdir()) == [
        "chart.json", "figure.png", "figure.svg", "table.csv",
    ]  # fmt: skip
    assert json.loads((out / "files" / "chart.json").read_text(encoding="utf-8"))["y"] == ["visits"]
    drawn = client.get(f"/api/exports/{rid}/figure/figure.png", headers=health)
    assert drawn.headers["content-type"] == "image/png"
    assert drawn.content == (out / "files" / "figure.png").read_bytes()  # what was reviewed
    assert "<svg" in (out / "files" / "figure.svg").read_text(encoding="utf-8")
    (out / "files" / "table.csv").write_text("district,visits\n梁溪区,1\n", encoding="utf-8")
    assert verify_bundle(out, public)  # any change is detected
    shown = client.get(f"/api/exports/{rid}", headers=health).json()
    assert shown["files"] == ["table.csv"] and shown["form"] == "figure"
    assert client.post(f"/api/exports/{rid}/revoke", headers=health, json={}).status_code == 422
    revoked = client.post(
        f"/api/exports/{rid}/revoke", headers=health, json={"reason": "cell found disclosive"}
    )
    assert revoked.json()["status"] == "revoked"
    assert client.get(f"/api/exports/{rid}/bundle", headers=alice).status_code == 404


def test_reviewer_sees_every_earlier_request_of_the_agreement(client, world):
    alice, health = login(client, "alice"), login(client, "health")
    first = _draft(client, "AGR-T-0001", {"table.csv": TABLE.encode()})
    client.post(f"/api/exports/{first}/submit", headers=alice)
    second = _draft(client, "AGR-T-0001", {"table.csv": TABLE.encode()})
    client.post(f"/api/exports/{second}/submit", headers=alice)
    shown = client.get(f"/api/exports/{second}", headers=health).json()
    assert [e["id"] for e in shown["earlier"]] == [first]
    withdrawn = client.post(f"/api/exports/{first}/withdraw", headers=alice).json()
    assert withdrawn["status"] == "withdrawn"
    illegal = client.post(f"/api/exports/{first}/start_review", headers=health, json={})
    assert illegal.status_code == 409 and illegal.json()["rule"] == "export-transition"


def test_the_author_never_reviews(world):
    author = world["health"]
    with pytest.raises(PermissionDenied, match="never reviews"):
        check_user_can_review(author, author="health", provider=PROVIDER)
    assert "checked --> in_review: start_review" in state_diagram()
    assert len(state_diagram().splitlines()) == len(TRANSITIONS) + 1
