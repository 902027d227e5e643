"""Through the platform: provisioning encrypts the agreement's database under a key from the
key store, ending the agreement destroys that key and records it (R16, Rizhao Art.31), and
rotation re-wraps keys under a new master key while the data still opens."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sandbox.agreements.service import import_agreement
from sandbox.audit.models import AuditEvent
from sandbox.cli.main import app
from sandbox.db.base import transaction
from sandbox.keys.store import DataKeyMissing, KeyStoreUnreadable, key_store
from tests.control_plane.conftest import (  # noqa: F401  (fixtures)
    catalog_dir,
    cli_env,
    client,
    db_url,
    factory,
    login,
    settings,
    users,
)
from tests.control_plane.helpers import agreement, open_agreement_database, publish_all

AGREEMENT = "AGR-T-0001"
#: A district name the provider's file holds; an encrypted database must not show it.
DISTRICT = "梁溪区"
COUNT = f"SELECT count(*) FROM clinic_visits WHERE district = '{DISTRICT}'"


@pytest.fixture
def provisioned(client, factory, users, settings, catalog_dir) -> Path:  # noqa: ANN001, F811
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        import_agreement(
            session=session,
            actor=users["health"],
            agreement=agreement(valid_until=date.today() + timedelta(days=1)),
        )
    r = client.post(f"/api/workspaces/{AGREEMENT}/provision", headers=login(client, "ops"))
    assert r.status_code == 200, r.text
    return settings.agreements_dir / f"{AGREEMENT}.duckdb"


def _events(factory, action: str) -> list[AuditEvent]:  # noqa: ANN001, F811
    with transaction(factory) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_ending_the_agreement_shreds_its_key_so_a_kept_copy_opens_no_more(
    client,  # noqa: F811
    factory,  # noqa: F811
    settings,  # noqa: F811
    provisioned: Path,
    tmp_path: Path,
) -> None:
    assert DISTRICT.encode() not in provisioned.read_bytes()
    with open_agreement_database(settings, AGREEMENT) as con:
        assert con.execute(COUNT).fetchone()[0] > 0
    kept = shutil.copy(provisioned, tmp_path / "kept.duckdb")  # someone kept the file
    wrapped = settings.key_store_path / "agreements" / f"{AGREEMENT}.json"
    snapshot = shutil.copy(wrapped, tmp_path / "snapshot.json")  # and a key store snapshot

    r = client.post(
        f"/api/agreements/{AGREEMENT}/terminate",
        headers=login(client, "health"),
        json={"reason": "ended early"},
    )
    assert r.status_code == 200, r.text
    r = client.post("/api/operator/lifecycle/run", headers=login(client, "ops"))
    assert r.json()["destroyed"] == [AGREEMENT]

    assert not provisioned.exists() and not wrapped.exists()
    with pytest.raises(DataKeyMissing):
        open_agreement_database(settings, AGREEMENT, kept)
    (event,) = _events(factory, "key.destroy")
    assert event.object == f"agreement:{AGREEMENT}" and event.actor == "platform"
    assert "Rizhao Art.31" in event.details

    # A snapshot of the key store still holds the wrapped key under today's master key;
    # after the next rotation that master key is gone, and the snapshot opens nothing.
    key_store(settings).rotate()
    shutil.copy(snapshot, wrapped)
    with pytest.raises(KeyStoreUnreadable):
        open_agreement_database(settings, AGREEMENT, kept)


def test_rotation_from_the_command_line_rewraps_and_the_data_still_opens(
    cli_env,  # noqa: F811
    factory,  # noqa: F811
    settings,  # noqa: F811
    provisioned: Path,
) -> None:
    with open_agreement_database(settings, AGREEMENT) as con:
        before = con.execute(COUNT).fetchone()
    old = key_store(settings).current_master()
    # The agreement's key, one per published dataset version and one per kind of sealed
    # field of the platform's database.
    wrapped = [
        *settings.key_store_path.glob("agreements/*"),
        *settings.key_store_path.glob("datasets/*"),
        *settings.key_store_path.glob("fields/*"),
    ]
    runner = CliRunner()
    refused = runner.invoke(app, ["keys", "rotate", "--as", "alice"])
    assert refused.exit_code == 1 and "[role]" in refused.output
    done = runner.invoke(app, ["keys", "rotate", "--as", "ops"])
    assert done.exit_code == 0, done.output
    assert f"now wraps {len(wrapped)} data key(s); destroyed: {old}" in done.output

    new = key_store(settings).current_master()
    assert new != old and not (settings.key_store_path / "masters" / f"{old}.json").exists()
    with open_agreement_database(settings, AGREEMENT) as con:
        assert con.execute(COUNT).fetchone() == before
    (event,) = _events(factory, "key.rotate")
    assert event.actor == "ops" and event.object == f"master-key:{new}"
