"""Import requests (issue 15, item 4): a file enters a workspace only when the agreement's
provider approves it. Checked for type, size and identifiers at once; an approved file
arrives in the agreement's project folder, where the researcher's development workspace
sees it as project/imports/<name>; a rejected one does not; every move is in the record."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select

from export_review.imports import IMPORTS, ImportStatus
from hub_config.dev_workspace import DevWorkspaceSpawner
from sandbox.agreements.service import import_agreement
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.settings import Settings
from sandbox.workspaces.names import server_name
from tests.control_plane.conftest import login, resident_id
from tests.control_plane.helpers import agreement, publish_all
from tests.workspaces.test_dev_project_folder import spawner

AGREEMENT = "AGR-T-0001"
TABLE = "district,population\n梁溪区,950000\n锡山区,720000\n".encode()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The platform of a machine running development workspaces (``sandbox run``)."""
    return Settings(environment="test", data_dir=tmp_path / "var", database_url=db_url,
                    workspace_kind="development")  # fmt: skip


@pytest.fixture
def world(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        import_agreement(session=session, actor=users["health"], agreement=agreement())
    return users


def ask(client, name: str, data: bytes) -> dict:  # noqa: ANN001
    answer = client.post(
        "/api/imports",
        headers=login(client, "alice"),
        data={"agreement_id": AGREEMENT, "purpose": "District populations for rates"},
        files={"file": (name, data)},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def events(client, request_id: int) -> list[str]:  # noqa: ANN001
    with transaction(client.app.state.sessionmaker) as session:
        rows = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object == f"import:{request_id}")
            .order_by(AuditEvent.seq)
        )
        return list(rows)


def workspace_home(settings: Settings) -> Path:
    """Alice's development workspace home for the agreement, as the hub's spawner makes it
    (its ``project`` links to the agreement's project folder)."""
    dev: DevWorkspaceSpawner = spawner(settings.data_dir / "hub", "alice", server_name(AGREEMENT))
    return dev.prepare_home()


def test_an_approved_import_arrives_in_the_workspace_and_a_rejected_one_does_not(
    client, world, settings
) -> None:
    approved, rejected = ask(client, "districts.csv", TABLE), ask(client, "notes.txt", b"hi\n")
    assert approved["status"] == rejected["status"] == ImportStatus.in_review
    assert approved["checks"]["kind"] == "csv"
    health = login(client, "health")
    reviewed = client.get(f"/api/imports/{approved['id']}/file", headers=health)
    assert reviewed.status_code == 200 and reviewed.content == TABLE  # what the provider reads

    done = client.post(f"/api/imports/{approved['id']}/approve", headers=health, json={})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == ImportStatus.delivered
    assert done.json()["delivered_to"] == "project/imports/districts.csv"
    no_reason = client.post(f"/api/imports/{rejected['id']}/reject", headers=health, json={})
    assert no_reason.status_code == 422 and no_reason.json()["rule"] == "import-answer"
    refused = client.post(
        f"/api/imports/{rejected['id']}/reject",
        headers=health,
        json={"reason": "not needed for the agreed purpose"},
    )
    assert refused.json()["status"] == ImportStatus.rejected

    home = workspace_home(settings)
    assert (home / "project" / "imports" / "districts.csv").read_bytes() == TABLE
    assert not (home / "project" / "imports" / "notes.txt").exists()
    assert events(client, approved["id"]) == [
        "import.create", "import.in_review", "import.approval", "import.approved",
        "import.delivered",
    ]  # fmt: skip
    assert events(client, rejected["id"]) == ["import.create", "import.in_review",
                                              "import.rejected"]  # fmt: skip
    again = client.post(f"/api/imports/{approved['id']}/approve", headers=health, json={})
    assert again.status_code == 409 and again.json()["rule"] == "import-transition"


def test_files_that_are_not_text_or_carry_identifiers_are_refused_at_once(
    client, world, settings
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    person = f"name,id\nx,{resident_id(random.Random(3))}\n".encode()
    cases = {
        ("figure.png", png): "import-file-type",
        ("table.csv", png): "import-file-type",  # a binary renamed
        ("people.csv", person): "import-file-identifier",
        ("run.ipynb", b'{"cells": [{"cell_type": "code", "source": "", "outputs": [1]}]}'):
            "import-notebook-outputs",
        ("big.csv", b"a\n" + b"1\n" * (6 * 1024 * 1024)): "import-file-size",
    }  # fmt: skip
    for (name, data), rule in cases.items():
        answer = ask(client, name, data)
        assert answer["status"] == ImportStatus.refused, name
        assert answer["checks"]["refused"]["rule"] == rule, (name, answer["checks"])
        assert answer["checks"]["refused"]["article"], name
        assert events(client, answer["id"]) == ["import.create", "import.refused"]
    health = login(client, "health")
    last = client.post(f"/api/imports/{answer['id']}/approve", headers=health, json={})
    assert last.status_code == 409  # nothing refused can be approved
    assert not (settings.data_dir / "hub").exists()  # nothing was delivered anywhere
    assert "refused" in IMPORTS.allowed("submitted")
