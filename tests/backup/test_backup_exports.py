"""Export-request files and signed release bundles in backups (R7, R8, R16).

The files of requests whose agreement goes on are kept, those of an ended
agreement are not (R16); released bundles are kept either way and still verify
after a restore, with the restored signing key and the key store, through the CLI too.
Both are held sealed, as they are kept (export_review/at_rest.py): the archive shows
none of their content.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from export_review.at_rest import bundle_opener, read_export_file
from export_review.bundle import verify_bundle
from export_review.models import ExportFile, ExportRequest
from export_review.signing import load_public_key, signing_key_path
from sandbox.backup import crypto
from sandbox.backup.archive import MANIFEST
from sandbox.backup.service import create_backup, restore_backup
from sandbox.cli.main import app
from sandbox.db.base import make_sessionmaker, transaction
from sandbox.db.sealed import platform_engine
from sandbox.errors import SandboxError
from sandbox.keys.store import key_store
from sandbox.refusal_text import say
from sandbox.settings import Settings, get_settings
from tests.backup.conftest import TABLE, Platform, target_url


def _backup(platform: Platform, factory, settings: Settings, out: Path, recipient: str):  # noqa: ANN001, ANN202
    return create_backup(
        factory=factory,
        settings=settings,
        actor=platform.users["ops"],
        out=out,
        recipients=[recipient],
    )


def test_exports_and_releases_are_kept_as_r16_allows_and_come_back_working(
    platform: Platform, factory, settings, db_url, tmp_path, backup_key, monkeypatch
):
    ids = platform.requests
    out = tmp_path / "platform.tar.gz.age"
    made = _backup(platform, factory, settings, out, backup_key.recipient)
    assert made.left_out_exports == sorted([ids["ended_draft"], ids["ended_release"]])

    plain = tmp_path / "plain.tar.gz"
    crypto.decrypt(out, plain, crypto.load_identities(backup_key.private_key))
    with tarfile.open(plain) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile(MANIFEST).read())
        held = tar.extractfile(f"exports/{ids['pending']}/table.csv").read()
        released = f"releases/AGR-T-0001-export-{ids['released']}/files/visits.csv"
        held_release = tar.extractfile(released).read()
    for kept in (held, held_release):  # sealed: nothing of the table in the archive
        assert "梁溪区".encode() not in kept and b"visits" not in kept
    assert len(manifest["exports"]) == 2 and len(manifest["releases"]) == 2
    assert f"exports/{ids['pending']}/table.csv" in names
    assert f"exports/{ids['released']}/visits.csv" in names
    assert not [n for n in names if n.startswith(f"exports/{ids['ended_draft']}/")]
    assert not [n for n in names if n.startswith(f"exports/{ids['ended_release']}/")]
    for agreement_id, rid in (
        ("AGR-T-0001", ids["released"]),
        ("AGR-T-0002", ids["ended_release"]),
    ):
        bundle = f"releases/{agreement_id}-export-{rid}"
        assert {f"{bundle}/manifest.json", f"{bundle}/manifest.sig"} <= names
    assert "keys/release_signing.key" in names

    into = tmp_path / "restored"
    with target_url(db_url) as url:
        restored = restore_backup(
            archive=out, into=into, actor="ops", db_url=url, key=backup_key.private_key
        )
        assert (restored.export_files, restored.releases) == (2, 2)
        fresh = Settings(
            environment="test",
            data_dir=into,
            database_url=url,
            key_store_dir=settings.key_store_path,
        )
        engine = platform_engine(fresh)
        try:
            with transaction(make_sessionmaker(engine)) as session:
                files = {f.request_id: f for f in session.scalars(select(ExportFile))}
                bundles = {
                    r.id: Path(r.bundle_path)
                    for r in session.scalars(select(ExportRequest))
                    if r.bundle_path
                }
        finally:
            engine.dispose()

    pending = Path(files[ids["pending"]].path)
    assert pending.parent == into.resolve() / "exports" / str(ids["pending"])
    content = read_export_file(key_store(fresh), "AGR-T-0001", files[ids["pending"]])
    assert content.endswith(TABLE) and TABLE not in pending.read_bytes()
    assert hashlib.sha256(content).hexdigest() == files[ids["pending"]].sha256
    left_out = Path(files[ids["ended_draft"]].path)
    assert left_out.is_relative_to(into.resolve()) and not left_out.exists()

    public = load_public_key(signing_key_path(fresh.keys_dir))
    runner = CliRunner()
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(into))  # the CLI opens with the key store
    monkeypatch.setenv("SANDBOX_KEY_STORE_DIR", str(settings.key_store_path))
    get_settings.cache_clear()
    for rid in (ids["released"], ids["ended_release"]):
        bundle = bundles[rid]
        assert bundle.parent == into.resolve() / "releases"
        assert verify_bundle(bundle, public) != []  # sealed: not verified without its key
        assert verify_bundle(bundle, public, bundle_opener(key_store(fresh), bundle.name)) == []
        args = [
            "release",
            "verify",
            str(bundle),
            "--public-key",
            str(fresh.keys_dir / "release_signing.key"),
        ]
        done = runner.invoke(app, args)
        assert done.exit_code == 0 and "ok:" in done.output, done.output
    get_settings.cache_clear()
    (bundles[ids["released"]] / "files" / "visits.csv").write_bytes(b"district,visits\n")
    opener = bundle_opener(key_store(fresh), bundles[ids["released"]].name)
    assert verify_bundle(bundles[ids["released"]], public, opener)  # the check can fail


@pytest.mark.parametrize(
    ("damage", "rule"),
    [("export", "backup-export-changed"), ("bundle", "backup-release-changed")],
)
def test_a_changed_export_or_bundle_stops_the_backup(
    platform: Platform, factory, settings, tmp_path, backup_key, damage, rule
):
    ids = platform.requests
    if damage == "export":
        target = settings.data_dir / "exports" / str(ids["pending"]) / "table.csv"
    else:
        target = (
            settings.data_dir / "releases" / f"AGR-T-0001-export-{ids['released']}" / "CITATION.txt"
        )
    target.write_bytes(target.read_bytes() + b"\n")
    out = tmp_path / "backups" / "platform.tar.gz.age"
    out.parent.mkdir()
    with pytest.raises(SandboxError) as refused:
        _backup(platform, factory, settings, out, backup_key.recipient)
    assert refused.value.rule == rule and refused.value.article
    assert str(ids["pending"] if damage == "export" else ids["released"]) in refused.value.message
    if damage == "bundle":  # the operator's page says what changed, in Chinese
        said = say(refused.value.rule, refused.value.message, "zh")
        assert said and said.endswith("（文件无法用其密钥打开：CITATION.txt）"), said
    assert list(out.parent.iterdir()) == []
