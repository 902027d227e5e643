"""Backups of a running platform and restores into a fresh place (Rizhao Art.29; Putuo Art.32).

The platform keeps writing to the record from another process while the
backup runs; the restored record must verify, hold exactly the backed-up head
plus the restore event, and a workspace rebuilt from the restored datasets and
keys must answer a query exactly as the original did.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from sandbox.accounts.models import User
from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import verify_chain
from sandbox.backup import crypto
from sandbox.backup.archive import MANIFEST
from sandbox.backup.crypto import KeyPair
from sandbox.backup.service import create_backup, restore_backup
from sandbox.cli.main import app
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.sealed import platform_engine
from sandbox.errors import Conflict, PermissionDenied, SandboxError, ValidationFailed
from sandbox.provisioning.service import provision
from sandbox.settings import Settings
from tests.backup.conftest import Platform, assert_empty, target_url
from tests.control_plane.helpers import open_agreement_database

# Sums rounded: a rebuild stores rows in another order (the DP contribution rank is
# drawn afresh), and floating-point sums depend on the order of their terms.
QUERY = "SELECT patient_id, district, count(*) AS n, round(sum(cost), 6) AS total "
QUERY += "FROM clinic_visits GROUP BY ALL ORDER BY ALL"


@contextmanager
def appending(url: str) -> Iterator[None]:
    """Another process appending to the record for as long as the block runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.backup.appender", url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait()


def query(settings: Settings, agreement_id: str) -> list[tuple]:
    with open_agreement_database(settings, agreement_id) as con:
        return con.sql(QUERY).fetchall()


def plain(archive: Path, key: KeyPair, into: Path) -> Path:
    """The archive's tar, decrypted with the operator's private key."""
    crypto.decrypt(archive, into, crypto.load_identities(key.private_key))
    return into


def contents(tar_path: Path) -> tuple[list[str], dict[str, Any]]:
    with tarfile.open(tar_path) as tar:
        return tar.getnames(), json.loads(tar.extractfile(MANIFEST).read())


def test_backup_while_writing_then_restore_verifies_and_answers_alike(
    platform: Platform, factory, settings, db_url, tmp_path, backup_key
):
    ops = platform.users["ops"]
    out = tmp_path / "backups" / "platform.tar.gz.age"
    with appending(settings.db_url):
        made = create_backup(
            factory=factory,
            settings=settings,
            actor=ops,
            out=out,
            recipients=[backup_key.recipient],
        )
    original = query(settings, "AGR-T-0001")

    names, manifest = contents(plain(out, backup_key, tmp_path / "plain.tar.gz"))
    assert names[0] == MANIFEST and set(names[1:]) == set(manifest["files"])
    assert "keys/AGR-T-0001.pseudonym.key" in names
    assert "keys/AGR-T-0002.pseudonym.key" not in names  # terminated: not kept (R16)
    assert not [n for n in names if n.endswith(".duckdb")]
    assert "datasets/clinic_visits/v1.parquet" in names
    assert manifest["left_out"]["pseudonym_keys_of_ended_agreements"] == ["AGR-T-0002"]
    assert made.audit_seq == manifest["audit_head"]["seq"]

    with transaction(factory) as session:
        last = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "backup.create")
            .order_by(AuditEvent.seq.desc())
        )
        assert last is not None and last.actor == "ops" and made.sha256 in last.details

    into = tmp_path / "restored"
    with target_url(db_url) as url:
        restored = restore_backup(
            archive=out, into=into, actor="ops", db_url=url, key=backup_key.private_key
        )
        assert restored.data_dir == into.resolve() and restored.encrypted
        # The backup holds dataset versions encrypted, not their keys: the restored
        # platform opens them with the key store they were written under.
        fresh = Settings(
            environment="test",
            data_dir=into,
            database_url=url,
            key_store_dir=settings.key_store_path,
        )
        engine = platform_engine(fresh)
        try:
            with transaction(make_sessionmaker(engine)) as session:
                result = verify_chain(session)
                assert result.ok, result.problems
                assert result.count == made.audit_seq + 1
                head = session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
                assert head.action == "backup.restore" and head.seq == restored.audit_seq
                ops = session.scalar(
                    select(AuditEvent.actor).where(AuditEvent.action == "test.append").limit(1)
                )
                assert ops == "appender"  # the concurrent writer's events are in, intact
                operator = session.scalar(select(User).where(User.username == "ops"))
                provision(
                    session=session, settings=fresh, actor=operator, agreement_id="AGR-T-0001"
                )
        finally:
            engine.dispose()
    assert query(fresh, "AGR-T-0001") == original
    assert not (fresh.keys_dir / "AGR-T-0002.pseudonym.key").exists()
    assert not [p for p in tmp_path.iterdir() if ".restore-" in p.name]


def _rewrite(archive: Path, key: KeyPair, out: Path, change: str) -> None:
    """Copy ``archive`` to ``out``, re-encrypted to the same key with one member's bytes
    altered and the manifest unchanged: what only the holder of the private key could do."""
    tar_path = plain(archive, key, out.with_name("original.tar.gz"))
    altered = out.with_name("altered.tar.gz")
    with tarfile.open(tar_path) as src, tarfile.open(altered, "w:gz") as dst:
        for info in src:
            data = src.extractfile(info).read()
            if info.name == change:
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(info, io.BytesIO(data))
    with out.open("wb") as f:
        crypto.encrypt(altered, f, crypto.parse_recipients(key.recipient))
    tar_path.unlink()
    altered.unlink()


def test_a_member_changed_under_valid_encryption_restores_nothing(
    platform: Platform, factory, settings, db_url, tmp_path, backup_key
):
    out = tmp_path / "platform.tar.gz.age"
    ops = platform.users["ops"]
    create_backup(
        factory=factory, settings=settings, actor=ops, out=out, recipients=[backup_key.recipient]
    )
    damaged = tmp_path / "damaged.tar.gz.age"
    _rewrite(out, backup_key, damaged, "datasets/clinic_visits/v1.parquet")
    into = tmp_path / "restored"
    with target_url(db_url) as url, pytest.raises(ValidationFailed) as refused:
        restore_backup(
            archive=damaged, into=into, actor="ops", db_url=url, key=backup_key.private_key
        )
    assert refused.value.rule == "backup-integrity"
    assert "datasets/clinic_visits/v1.parquet" in refused.value.message
    assert not into.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_only_an_operator_backs_up_or_restores_and_nothing_is_left(
    platform: Platform, factory, settings, db_url, tmp_path, backup_key
):
    out = tmp_path / "platform.tar.gz.age"
    keys = {"recipients": [backup_key.recipient]}
    alice, ops = platform.users["alice"], platform.users["ops"]
    with pytest.raises(PermissionDenied):
        create_backup(factory=factory, settings=settings, actor=alice, out=out, **keys)
    assert not out.exists()
    create_backup(factory=factory, settings=settings, actor=ops, out=out, **keys)
    into = tmp_path / "restored"
    key = backup_key.private_key
    with target_url(db_url) as url:
        with pytest.raises(PermissionDenied):
            restore_backup(archive=out, into=into, actor="alice", db_url=url, key=key)
        assert not into.exists()
        assert_empty(url)  # the PostgreSQL target was emptied again
        (into / "something").mkdir(parents=True)
        with pytest.raises(Conflict):
            restore_backup(archive=out, into=into, actor="ops", db_url=url, key=key)


def test_a_backup_that_fails_leaves_no_archive(
    platform: Platform, factory, settings, tmp_path, backup_key
):
    (settings.datasets_dir / "clinic_visits" / "v1.parquet").unlink()
    out = tmp_path / "backups" / "platform.tar.gz.age"
    out.parent.mkdir()
    with pytest.raises(SandboxError) as refused:
        create_backup(
            factory=factory,
            settings=settings,
            actor=platform.users["ops"],
            out=out,
            recipients=[backup_key.recipient],
        )
    assert refused.value.rule == "backup-dataset-missing"
    assert list(out.parent.iterdir()) == []
    assert not list(settings.data_dir.glob(".backup-*"))  # no staging left in the data dir


def test_cli_backup_and_restore(platform, settings, db_url, tmp_path, monkeypatch, backup_key):
    monkeypatch.setenv("SANDBOX_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("SANDBOX_BACKUP_RECIPIENT", raising=False)
    from sandbox.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    out = tmp_path / "cli.tar.gz.age"
    into = tmp_path / "cli-restored"
    try:
        refused = runner.invoke(app, ["backup", str(out), "--as", "bob"])
        assert refused.exit_code == 1 and "[role]" in refused.output
        refused = runner.invoke(app, ["backup", str(out), "--as", "ops"])
        assert refused.exit_code == 1 and "[backup-recipient-missing;" in refused.output
        assert "SANDBOX_BACKUP_RECIPIENT" in refused.output and not out.exists()
        pub = str(backup_key.public_key)
        done = runner.invoke(app, ["backup", str(out), "--recipient", pub, "--as", "ops"])
        assert done.exit_code == 0, done.output
        made = json.loads(done.output)
        assert made["size"] == out.stat().st_size
        assert made["encrypted_to"] == [backup_key.recipient]
        with target_url(db_url) as url:
            target = ["--db", url] if url else []
            args = ["restore", str(out), "--into", str(into), *target, "--as", "ops"]
            refused = runner.invoke(app, args)
            assert refused.exit_code == 1 and "[backup-key-missing;" in refused.output
            assert not into.exists()
            done = runner.invoke(app, [*args, "--key", str(backup_key.private_key)])
            assert done.exit_code == 0, done.output
            assert "sandbox:sandbox@" not in done.output  # the password is not printed
            engine = make_engine(url or f"sqlite:///{into / 'sandbox.db'}")
            with transaction(make_sessionmaker(engine)) as session:
                assert verify_chain(session).ok
                restores = session.scalar(
                    select(func.count()).where(AuditEvent.action == "backup.restore")
                )
            engine.dispose()
    finally:
        get_settings.cache_clear()
    assert restores == 1
