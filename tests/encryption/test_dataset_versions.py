"""Dataset versions at rest: publishing stores each version as Parquet encrypted under a key of
its own from the key store, so its bytes show no stored value and it opens only with that key,
while provisioning still builds the agreement's database from it, row for row (Rizhao Art.29)."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from query_guard.at_rest import is_encrypted_parquet, parquet_source, refused_without_key
from query_guard.compile import source_digest
from sandbox.agreements.service import import_agreement
from sandbox.audit.models import AuditEvent
from sandbox.catalog.encryption import content_digest, version_key, version_key_ref
from sandbox.catalog.models import DatasetVersion
from sandbox.cli.main import app
from sandbox.db.base import transaction
from sandbox.errors import SandboxError
from sandbox.keys.store import key_store
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


def _version(factory) -> DatasetVersion:  # noqa: ANN001, F811
    with transaction(factory) as session:
        version = session.scalars(select(DatasetVersion).order_by(DatasetVersion.id)).first()
        session.expunge(version)
        return version


def _count(path: Path, key: bytes | None, where: str = "true") -> int:
    with duckdb.connect() as conn:
        rows = parquet_source(conn, path, key=key, name="v")
        with refused_without_key(path.name, key, "publish it again"):
            return conn.execute(f"SELECT count(*) FROM {rows} WHERE {where}").fetchone()[0]


def test_a_published_version_holds_no_value_in_clear_and_opens_only_with_its_key(
    factory,  # noqa: F811
    users,  # noqa: F811
    settings,  # noqa: F811
    catalog_dir,  # noqa: F811
) -> None:
    source = catalog_dir / "data" / "clinic_visits.parquet"
    planted = pq.read_table(source).column("patient_id")[0].as_py()  # a resident id
    assert planted.encode() in source.read_bytes()  # the probe finds it in a plain file
    publish_all(factory, users, settings, catalog_dir)
    version = _version(factory)
    stored = Path(version.path)

    assert stored.is_relative_to(settings.datasets_dir) and is_encrypted_parquet(stored)
    assert planted.encode() not in stored.read_bytes()
    assert "梁溪区".encode() not in stored.read_bytes()
    key = version_key(key_store(settings), version)
    assert key is not None and key not in stored.read_bytes()
    wrapped = settings.key_store_path / "datasets" / f"{version_key_ref(version).name}.json"
    assert wrapped.is_file()  # the key lives in the key store, wrapped, apart from the data

    assert _count(stored, key, f"patient_id = '{planted}'") > 0
    for wrong in (None, secrets.token_bytes(32)):
        with pytest.raises(SandboxError) as refused:
            _count(stored, wrong)
        assert refused.value.rule == "at-rest-key" and refused.value.article == "Rizhao Art.29"
    with pytest.raises(OSError, match="encrypted"):
        pq.read_table(stored)  # nor does another Parquet reader open it without the key
    # The content digest names the data, not its encryption: as the plain file would have it.
    assert version.content_sha256 == content_digest(pq.read_table(source))


def test_provisioning_builds_the_agreement_database_from_encrypted_versions(
    client,  # noqa: F811
    factory,  # noqa: F811
    users,  # noqa: F811
    settings,  # noqa: F811
    catalog_dir,  # noqa: F811
) -> None:
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        import_agreement(
            session=session,
            actor=users["health"],
            agreement=agreement(valid_until=date.today() + timedelta(days=1)),
        )
    r = client.post(f"/api/workspaces/{AGREEMENT}/provision", headers=login(client, "ops"))
    assert r.status_code == 200, r.text

    source = str(catalog_dir / "data" / "clinic_visits.parquet")
    by_district = duckdb.execute(
        "SELECT district, count(*), round(sum(cost), 2) FROM read_parquet(?) GROUP BY 1 ORDER BY 1",
        [source],
    ).fetchall()
    with open_agreement_database(settings, AGREEMENT) as con:
        built = con.execute(
            "SELECT district, count(*), round(sum(cost), 2) FROM clinic_visits "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        (digest,) = con.execute(
            "SELECT digest FROM qg_private.__qg_sources WHERE dataset = 'clinic_visits'"
        ).fetchone()
    assert built == by_district
    assert digest == _version(factory).content_sha256  # noise keyed by content, as before


def test_a_plain_version_from_before_still_builds(
    client,  # noqa: F811
    factory,  # noqa: F811
    users,  # noqa: F811
    settings,  # noqa: F811
    catalog_dir,  # noqa: F811
) -> None:
    """A data directory from before encryption: its versions are plain Parquet, with no key."""
    publish_all(factory, users, settings, catalog_dir)
    version = _version(factory)
    plain = catalog_dir / "data" / "clinic_visits.parquet"
    Path(version.path).write_bytes(plain.read_bytes())
    key_store(settings).destroy_data_key(version_key_ref(version))
    assert version_key(key_store(settings), version) is None
    with transaction(factory) as session:
        import_agreement(session=session, actor=users["health"], agreement=agreement())
    r = client.post(f"/api/workspaces/{AGREEMENT}/provision", headers=login(client, "ops"))
    assert r.status_code == 200, r.text
    with open_agreement_database(settings, AGREEMENT) as con:
        assert con.execute("SELECT count(*) FROM clinic_visits").fetchone() == (
            pq.read_metadata(plain).num_rows,
        )


def test_encrypt_datasets_migrates_plain_versions_and_keeps_their_digest(
    cli_env,  # noqa: F811
    factory,  # noqa: F811
    users,  # noqa: F811
    settings,  # noqa: F811
    catalog_dir,  # noqa: F811
) -> None:
    """A data directory from before: a plain version file, its digest both sha256 and the
    content's (as migration 0009 leaves it), no key; the command encrypts it in place."""
    publish_all(factory, users, settings, catalog_dir)
    source = catalog_dir / "data" / "clinic_visits.parquet"
    planted = pq.read_table(source).column("patient_id")[0].as_py()
    plain_digest = source_digest(source)
    with transaction(factory) as session:
        version = session.scalars(select(DatasetVersion).order_by(DatasetVersion.id)).first()
        Path(version.path).write_bytes(source.read_bytes())
        version.sha256 = version.content_sha256 = plain_digest
        key_store(settings).destroy_data_key(version_key_ref(version))
        stored = Path(version.path)

    runner = CliRunner()
    refused = runner.invoke(app, ["keys", "encrypt-datasets", "--as", "alice"])
    assert refused.exit_code == 1 and "[role]" in refused.output
    done = runner.invoke(app, ["keys", "encrypt-datasets", "--as", "ops"])
    assert done.exit_code == 0, done.output
    assert "encrypted 1 dataset version(s): clinic_visits v1" in done.output

    assert is_encrypted_parquet(stored) and planted.encode() not in stored.read_bytes()
    version = _version(factory)
    assert version.content_sha256 == plain_digest != version.sha256 == source_digest(stored)
    assert _count(stored, version_key(key_store(settings), version)) == 300
    with transaction(factory) as session:
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "dataset.encrypt"))
        assert event.actor == "ops" and event.object == "dataset:clinic_visits"
    again = runner.invoke(app, ["keys", "encrypt-datasets", "--as", "ops"])
    assert "encrypted 0 dataset version(s): none" in again.output
