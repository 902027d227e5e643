"""Organisations by credit code, members, real-name identity: API and CLI.

Each refusal must cite its rule (and article where one applies) and leave the
database as it was; each change must leave an audit event.
"""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from sandbox.audit.models import AuditEvent
from sandbox.catalog.identifiers import credit_code_check_char
from sandbox.cli.main import app as cli
from sandbox.db.base import transaction
from sandbox.errors import PermissionDenied
from sandbox.identity.models import PersonIdentity
from sandbox.identity.organisations import has_real_name, list_identities
from tests.control_plane.conftest import PROVIDER, login, resident_id

UNIVERSITY = "91320200MA1N2P3Q4"
UNIVERSITY_CODE = UNIVERSITY + credit_code_check_char(UNIVERSITY)
HEALTH = "11320200MB0123456"
HEALTH_CODE = HEALTH + credit_code_check_char(HEALTH)


def org(code: str, name: str) -> dict[str, str]:
    return {
        "credit_code": code,
        "name": name,
        "legal_name": f"{name} (registered)",
        "verified_how": "national enterprise credit register lookup",
    }


def event_count(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


@pytest.fixture
def ops(client: TestClient, users) -> dict[str, str]:  # noqa: ANN001
    return login(client, "ops")


def test_operator_registers_an_organisation_and_adds_members(client, factory, users, ops):  # noqa: ANN001
    before = event_count(factory)
    created = client.post("/api/organisations", json=org(UNIVERSITY_CODE, "江南大学"), headers=ops)
    assert created.status_code == 201, created.text
    assert created.json()["members"] == []
    added = client.post(
        f"/api/organisations/{UNIVERSITY_CODE}/members",
        json={"username": "alice", "role": "representative"},
        headers=ops,
    )
    assert added.status_code == 201, added.text
    assert added.json()["members"] == [
        {"username": "alice", "role": "representative", "platform_role": "researcher"}
    ]
    assert event_count(factory) == before + 2
    listed = client.get("/api/organisations", headers=login(client, "auth"))
    assert [o["credit_code"] for o in listed.json()] == [UNIVERSITY_CODE]


def test_a_provider_joins_the_organisation_its_datasets_name(client, users, ops):  # noqa: ANN001
    client.post("/api/organisations", json=org(HEALTH_CODE, PROVIDER), headers=ops)
    ok = client.post(
        f"/api/organisations/{HEALTH_CODE}/members", json={"username": "health"}, headers=ops
    )
    assert ok.status_code == 201
    me = client.get("/api/me", headers=login(client, "health"))
    assert me.json()["organisation"] == PROVIDER  # permission checks compare this name
    moved = client.post(
        f"/api/organisations/{HEALTH_CODE}/members", json={"username": "market"}, headers=ops
    )
    assert moved.status_code == 409 and moved.json()["rule"] == "provider-organisation"
    assert client.get("/api/me", headers=login(client, "market")).json()["organisation"] == (
        "city-market-regulation"
    )


def test_a_bad_credit_code_is_refused_with_its_article_and_changes_nothing(
    client,
    factory,
    users,
    ops,  # noqa: ANN001
):
    before = event_count(factory)
    wrong = UNIVERSITY + ("0" if UNIVERSITY_CODE[-1] != "0" else "1")
    refused = client.post("/api/organisations", json=org(wrong, "江南大学"), headers=ops)
    assert refused.status_code == 422
    assert refused.json()["rule"] == "credit-code"
    assert refused.json()["article"] == "Rizhao Art.10"
    assert client.get("/api/organisations", headers=ops).json() == []
    assert event_count(factory) == before


def test_only_the_operator_registers(client, users):  # noqa: ANN001
    response = client.post(
        "/api/organisations", json=org(UNIVERSITY_CODE, "江南大学"), headers=login(client, "alice")
    )
    assert response.status_code == 403 and response.json()["rule"] == "role"


def test_identity_keeps_only_a_keyed_hash_of_the_resident_id(client, factory, users, ops):  # noqa: ANN001
    number = resident_id(random.Random(3))
    body = {"legal_name": "王小明", "verified_how": "in person, ID card", "resident_id": number}
    done = client.put("/api/people/alice/identity", json=body, headers=ops)
    assert done.status_code == 200, done.text
    assert done.json()["verified"] is True and number not in done.text
    with transaction(factory) as session:
        stored = session.get(PersonIdentity, users["alice"].id)
        assert stored.resident_id_hmac and number not in stored.resident_id_hmac
        record_text = " ".join(e.details for e in session.scalars(select(AuditEvent)))
    assert number not in record_text and "王小明" not in record_text
    before = event_count(factory)
    twice = client.put("/api/people/bob/identity", json=body, headers=ops)
    assert twice.status_code == 409 and twice.json()["rule"] == "resident-id-duplicate"
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
    bad = client.put("/api/people/bob/identity", json={**body, "resident_id": wrong}, headers=ops)
    assert bad.status_code == 422 and bad.json()["article"] == "Rizhao Art.10"
    assert event_count(factory) == before
    with transaction(factory) as session:  # bob's identity (verified by the fixture) kept as it was
        assert session.get(PersonIdentity, users["bob"].id).resident_id_hmac is None


def test_cli_add_list_add_member(settings, users, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("SANDBOX_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(settings.data_dir))
    from sandbox.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    args = ["--name", "江南大学", "--legal-name", "江南大学", "--verified-how", "register"]
    refused = runner.invoke(cli, ["org", "add", UNIVERSITY_CODE, *args, "--as", "alice"])
    assert refused.exit_code == 1 and "[role]" in refused.output
    done = runner.invoke(cli, ["org", "add", UNIVERSITY_CODE.lower(), *args, "--as", "ops"])
    assert done.exit_code == 0, done.output
    member = runner.invoke(cli, ["org", "add-member", UNIVERSITY_CODE, "bob", "--as", "ops"])
    assert member.exit_code == 0, member.output
    listed = runner.invoke(cli, ["org", "list", "--as", "ops"])
    assert listed.output == f"{UNIVERSITY_CODE}\t江南大学\t江南大学\n  bob\tmember\tresearcher\n"
    get_settings.cache_clear()


def test_the_identity_register_is_for_oversight_and_never_holds_the_number(
    client,
    factory,
    users,
    ops,  # noqa: ANN001
):
    number = resident_id(random.Random(4))
    body = {"legal_name": "王小明", "verified_how": "in person, ID card", "resident_id": number}
    assert client.put("/api/people/alice/identity", json=body, headers=ops).status_code == 200
    with transaction(factory) as session:
        with pytest.raises(PermissionDenied) as err:
            list_identities(session, users["alice"])
        assert err.value.rule == "role"
        people = {u.username: i for u, i in list_identities(session, users["auth"])}
        assert sorted(people) == ["alice", "auth", "bob", "health", "market", "ops"]
        assert people["health"] is None and people["ops"] is None  # nobody verified them
        assert people["alice"].legal_name == "王小明" and people["alice"].verified_by == "ops"
        assert number not in people["alice"].resident_id_hmac
        assert has_real_name(session, users["bob"]) and not has_real_name(session, users["health"])
