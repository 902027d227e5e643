"""Backups through ``/api/operator/backups`` (R13; Rizhao Art.29; Putuo Art.32), on SQLite and
PostgreSQL: refused without a public key with nothing written, otherwise an encrypted file
in ``backup_dir`` that is listed, cannot be read as a tar, never holds the backups folder,
and restores with the private key into a record that verifies. Only the operator makes
backups; the authority may list them; researchers and providers may do neither.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import verify_chain
from sandbox.backup import crypto
from sandbox.backup.crypto import KeyPair
from sandbox.backup.service import restore_backup
from sandbox.catalog.models import DatasetVersion
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.settings import Settings
from tests.backup.conftest import Platform, target_url
from tests.control_plane.conftest import login

URL = "/api/operator/backups"


@pytest.fixture
def keyed(settings: Settings, backup_key: KeyPair) -> Settings:
    """The platform's settings with the operator's public key configured."""
    return settings.model_copy(update={"backup_recipient": backup_key.recipient})


@pytest.fixture
def keyed_client(keyed: Settings, factory: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(keyed)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
    app.state.engine.dispose()


def _events(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_without_a_public_key_nothing_is_written(
    platform: Platform, client: TestClient, factory: sessionmaker[Session], settings: Settings
) -> None:
    ops = login(client, "ops")
    before = _events(factory)
    refused = client.post(URL, headers=ops)
    assert refused.status_code == 422
    body = refused.json()
    assert body["rule"] == "backup-recipient-missing" and "Rizhao Art.29" in body["article"]
    assert "SANDBOX_BACKUP_RECIPIENT" in body["error"]
    assert not settings.backups_dir.exists()
    assert client.get(URL, headers=ops).json() == []
    assert _events(factory) == before
    with transaction(factory) as session:
        assert verify_chain(session).ok


def _members(archive: Path, key: KeyPair, tmp_path: Path) -> list[str]:
    plain = tmp_path / f"{archive.name}.tar.gz"
    crypto.decrypt(archive, plain, crypto.load_identities(key.private_key))
    with tarfile.open(plain) as tar:
        return tar.getnames()


def test_backup_is_listed_encrypted_and_restores(
    platform: Platform,
    keyed_client: TestClient,
    factory: sessionmaker[Session],
    keyed: Settings,
    backup_key: KeyPair,
    db_url: str,
    tmp_path: Path,
) -> None:
    ops = login(keyed_client, "ops")
    made = keyed_client.post(URL, headers=ops)
    assert made.status_code == 201, made.text
    first = made.json()
    path = keyed.backups_dir / first["name"]
    assert first["name"].startswith("sandbox-backup-") and first["name"].endswith(".tar.gz.age")
    assert path.is_file() and path.stat().st_size == first["bytes"]
    assert not tarfile.is_tarfile(path) and path.read_bytes().startswith(crypto.HEADER)
    assert first["encrypted_to"] == [backup_key.recipient]
    with transaction(factory) as session:
        versions = session.scalar(select(func.count()).select_from(DatasetVersion))
        recorded = session.scalar(
            select(AuditEvent).where(AuditEvent.object == f"backup:{first['name']}")
        )
    assert first["datasets"] == versions and versions > 0
    # AGR-T-0001's two requests have files; AGR-T-0002 ended, so its files stay out (R16).
    assert first["exports"] == 2 and first["releases"] == 2
    ended = sorted([platform.requests["ended_draft"], platform.requests["ended_release"]])
    assert first["left_out_exports"] == ended
    assert recorded is not None and recorded.action == "backup.create"
    assert recorded.seq == first["audit_seq"] + 1  # the head it holds, then its own event

    listed = keyed_client.get(URL, headers=ops).json()
    assert [(b["name"], b["bytes"], b["encrypted"]) for b in listed] == [
        (first["name"], first["bytes"], True)
    ]

    # A second backup, made while the first sits in backup_dir, does not hold it.
    second = keyed_client.post(URL, headers=ops).json()
    assert second["name"] != first["name"]
    names = [b["name"] for b in keyed_client.get(URL, headers=ops).json()]
    assert sorted(names) == sorted([first["name"], second["name"]])
    archive = keyed.backups_dir / second["name"]
    members = _members(archive, backup_key, tmp_path)
    assert "manifest.json" in members
    assert not [m for m in members if m.startswith("backups/") or first["name"] in m]

    into = tmp_path / "restored"
    with target_url(db_url) as url:
        restored = restore_backup(
            archive=archive, into=into, actor="ops", db_url=url, key=backup_key.private_key
        )
        assert restored.encrypted and not (into / "backups").exists()
        engine = make_engine(Settings(data_dir=into, database_url=url).db_url)
        try:
            with transaction(make_sessionmaker(engine)) as session:
                chain = verify_chain(session)
        finally:
            engine.dispose()
    assert chain.ok, chain.problems
    assert chain.count == second["audit_seq"] + 1 == restored.audit_seq


def test_only_the_operator_backs_up_and_the_authority_may_list(
    platform: Platform, keyed_client: TestClient, keyed: Settings
) -> None:
    for who in ("alice", "health"):
        headers = login(keyed_client, who)
        for answer in (
            keyed_client.post(URL, headers=headers),
            keyed_client.get(URL, headers=headers),
        ):
            assert answer.status_code == 403, (who, answer.text)
            assert answer.json()["rule"] == "role"
    authority = login(keyed_client, "auth")
    refused = keyed_client.post(URL, headers=authority)
    assert refused.status_code == 403 and "operator" in refused.json()["error"]
    assert keyed_client.get(URL, headers=authority).json() == []
    assert not keyed.backups_dir.exists()
    assert keyed_client.get(URL).json()["rule"] == "auth"  # nobody signed in
