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
from datetime import date
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import create_engine, func, inspect, select
from typer.testing import CliRunner

from sandbox.accounts.models import User
from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.service import change_status, import_agreement
from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import verify_chain
from sandbox.backup.archive import MANIFEST
from sandbox.backup.service import create_backup, restore_backup
from sandbox.cli.main import app
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.errors import Conflict, PermissionDenied, SandboxError, ValidationFailed
from sandbox.provisioning.service import provision
from sandbox.settings import Settings
from tests.control_plane.helpers import agreement, publish_all
from tests.databases import fresh_postgres_database

# Sums rounded: a rebuild stores rows in another order (the DP contribution rank is
# drawn afresh), and floating-point sums depend on the order of their terms.
QUERY = "SELECT patient_id, district, count(*) AS n, round(sum(cost), 6) AS total "
QUERY += "FROM clinic_visits GROUP BY ALL ORDER BY ALL"


@pytest.fixture
def platform(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    """Two provisioned workspaces; AGR-T-0002 has been terminated but not yet destroyed."""
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        for agreement_id in ("AGR-T-0001", "AGR-T-0002"):
            import_agreement(
                session=session, actor=users["health"], agreement=agreement(id=agreement_id)
            )
            provision(
                session=session, settings=settings, actor=users["ops"], agreement_id=agreement_id
            )
        change_status(
            session=session,
            actor=users["health"],
            agreement_id="AGR-T-0002",
            action=AgreementAction.terminate,
            reason="ended by the parties",
            today=date.today(),
        )
    return users


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


@contextmanager
def target_url(db_url: str) -> Iterator[str | None]:
    """Where a restore puts the database: a new SQLite file, or an empty PostgreSQL database."""
    if db_url.startswith("sqlite"):
        yield None
    else:
        with fresh_postgres_database() as url:
            yield url


def query(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(QUERY).fetchall()


def test_backup_while_writing_then_restore_verifies_and_answers_alike(
    platform, factory, settings, db_url, tmp_path
):
    out = tmp_path / "backups" / "platform.tar.gz"
    with appending(settings.db_url):
        made = create_backup(factory=factory, settings=settings, actor=platform["ops"], out=out)
    original = query(settings.agreements_dir / "AGR-T-0001.duckdb")

    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(MANIFEST).read())
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
        restored = restore_backup(archive=out, into=into, actor="ops", db_url=url)
        assert restored.data_dir == into.resolve()
        fresh = Settings(environment="test", data_dir=into, database_url=url)
        engine = make_engine(fresh.db_url)
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
    assert query(fresh.agreements_dir / "AGR-T-0001.duckdb") == original
    assert not (fresh.keys_dir / "AGR-T-0002.pseudonym.key").exists()
    assert not [p for p in tmp_path.iterdir() if ".restore-" in p.name]


def _rewrite(archive: Path, out: Path, change: str) -> None:
    """Copy ``archive`` to ``out`` with one member's bytes altered, the manifest unchanged."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for info in src:
            data = src.extractfile(info).read()
            if info.name == change:
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(info, io.BytesIO(data))


def test_a_damaged_archive_restores_nothing(platform, factory, settings, db_url, tmp_path):
    out = tmp_path / "platform.tar.gz"
    create_backup(factory=factory, settings=settings, actor=platform["ops"], out=out)
    damaged = tmp_path / "damaged.tar.gz"
    _rewrite(out, damaged, "datasets/clinic_visits/v1.parquet")
    into = tmp_path / "restored"
    with target_url(db_url) as url, pytest.raises(ValidationFailed) as refused:
        restore_backup(archive=damaged, into=into, actor="ops", db_url=url)
    assert refused.value.rule == "backup-integrity"
    assert not into.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_only_an_operator_backs_up_or_restores_and_nothing_is_left(
    platform, factory, settings, db_url, tmp_path
):
    out = tmp_path / "platform.tar.gz"
    with pytest.raises(PermissionDenied):
        create_backup(factory=factory, settings=settings, actor=platform["alice"], out=out)
    assert not out.exists()
    create_backup(factory=factory, settings=settings, actor=platform["ops"], out=out)
    into = tmp_path / "restored"
    with target_url(db_url) as url:
        with pytest.raises(PermissionDenied):
            restore_backup(archive=out, into=into, actor="alice", db_url=url)
        assert not into.exists()
        if url is not None:  # the PostgreSQL target was emptied again
            engine = create_engine(url)
            with engine.connect() as conn:
                assert inspect(conn).get_table_names() == []
            engine.dispose()
        (into / "something").mkdir(parents=True)
        with pytest.raises(Conflict):
            restore_backup(archive=out, into=into, actor="ops", db_url=url)


def test_a_backup_that_fails_leaves_no_archive(platform, factory, settings, tmp_path):
    (settings.datasets_dir / "clinic_visits" / "v1.parquet").unlink()
    out = tmp_path / "backups" / "platform.tar.gz"
    with pytest.raises(SandboxError) as refused:
        create_backup(factory=factory, settings=settings, actor=platform["ops"], out=out)
    assert refused.value.rule == "backup-dataset-missing"
    assert list(out.parent.iterdir()) == []


def test_cli_backup_and_restore(platform, settings, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(settings.data_dir))
    from sandbox.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    out = tmp_path / "cli.tar.gz"
    into = tmp_path / "cli-restored"
    try:
        refused = runner.invoke(app, ["backup", str(out), "--as", "bob"])
        assert refused.exit_code == 1 and "[role]" in refused.output
        done = runner.invoke(app, ["backup", str(out), "--as", "ops"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output)["size"] == out.stat().st_size
        with target_url(db_url) as url:
            target = ["--db", url] if url else []
            args = ["restore", str(out), "--into", str(into), *target, "--as", "ops"]
            done = runner.invoke(app, args)
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
