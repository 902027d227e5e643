"""Backups are encrypted at rest to the operator's public key (R13; R16).

The platform holds only the public key, so what it writes it cannot read; a
restore needs the private key, and a wrong key, a changed byte or a cut-off
archive is refused with nothing restored.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import select

from sandbox.audit.models import AuditEvent
from sandbox.backup import crypto
from sandbox.backup.crypto import KeyPair, generate_key_pair, load_identities
from sandbox.backup.service import create_backup, restore_backup
from sandbox.db.base import transaction
from sandbox.errors import Conflict, PolicyViolation, ValidationFailed
from sandbox.settings import Settings
from tests.backup.conftest import Platform, assert_empty, target_url


def _backup(platform: Platform, factory, settings: Settings, out: Path, **how):  # noqa: ANN001, ANN003, ANN202
    return create_backup(
        factory=factory, settings=settings, actor=platform.users["ops"], out=out, **how
    )


def test_the_archive_is_unreadable_without_the_private_key(
    platform: Platform, factory, settings, tmp_path, backup_key
):
    out = tmp_path / "backups" / "platform.tar.gz.age"
    made = _backup(platform, factory, settings, out, recipients=[backup_key.recipient])
    data = out.read_bytes()
    assert data.startswith(crypto.HEADER) and backup_key.recipient not in data.decode("latin-1")
    for plain_text in (b"manifest.json", b"SQLite format 3", b"clinic_visits", b"PRIVATE KEY"):
        assert plain_text not in data
    assert made.encrypted_to == [backup_key.recipient]
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # nothing plain beside it
    assert not list(settings.data_dir.glob(".backup-*"))
    with transaction(factory) as session:
        event = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "backup.create")
            .order_by(AuditEvent.seq.desc())
        )
        assert event is not None and backup_key.recipient in event.details
    # The format is age v1: the archive opens with the key alone (so also with the age tool).
    plain = tmp_path / "plain.tar.gz"
    crypto.decrypt(out, plain, load_identities(backup_key.private_key))
    with tarfile.open(plain) as tar:
        assert "database.sqlite" in tar.getnames() or "database.pgdump" in tar.getnames()


def _variants(out: Path, tmp_path: Path) -> dict[str, Path]:
    """The archive with one byte changed in the middle, cut short, and extended."""
    data = out.read_bytes()
    middle = len(data) // 2
    variants = {
        "tampered": data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :],
        "truncated": data[: len(data) - 1000],
        "extended": data + b"\x00",
    }
    paths = {}
    for name, content in variants.items():
        paths[name] = tmp_path / f"{name}.tar.gz.age"
        paths[name].write_bytes(content)
    return paths


def test_wrong_key_changed_or_cut_archive_restore_nothing(
    platform: Platform, factory, settings, db_url, tmp_path, backup_key
):
    out = tmp_path / "platform.tar.gz.age"
    _backup(platform, factory, settings, out, recipients=[backup_key.recipient])
    other = generate_key_pair(tmp_path / "someone-else")
    cases = [(out, other.private_key, "backup-wrong-key"), (out, None, "backup-key-missing")]
    cases += [
        (p, backup_key.private_key, "backup-integrity") for p in _variants(out, tmp_path).values()
    ]
    into = tmp_path / "restored"
    with target_url(db_url) as url:
        for archive, key, rule in cases:
            with pytest.raises(ValidationFailed) as refused:
                restore_backup(archive=archive, into=into, actor="ops", db_url=url, key=key)
            assert refused.value.rule == rule, (archive.name, refused.value)
            assert refused.value.article and archive.name in refused.value.message
            if rule == "backup-integrity":  # caught by the encryption, before any tar is read
                assert "authenticated decryption" in refused.value.message
            assert not into.exists(), archive.name
            assert not [p for p in tmp_path.iterdir() if ".restore-" in p.name]
            assert_empty(url)
        restored = restore_backup(
            archive=out, into=into, actor="ops", db_url=url, key=backup_key.private_key
        )
    assert restored.encrypted and (into / "keys").is_dir()  # the refusals were not the key's fault


def test_plain_backups_only_when_asked_and_never_in_production(
    platform: Platform, factory, settings, db_url, tmp_path, backup_key
):
    out = tmp_path / "backups" / "platform.tar.gz"
    with pytest.raises(ValidationFailed) as refused:
        _backup(platform, factory, settings, out)
    assert refused.value.rule == "backup-recipient-missing"
    with pytest.raises(ValidationFailed) as refused:
        _backup(platform, factory, settings, out, recipients=["age1notakey"])
    assert refused.value.rule == "backup-recipient" and "age1notakey" in refused.value.message
    production = settings.model_copy(update={"environment": "production"})
    with pytest.raises(PolicyViolation) as refused:
        _backup(platform, factory, production, out, unencrypted=True)
    assert refused.value.rule == "backup-unencrypted" and "Rizhao Art.29" in str(refused.value)
    assert not out.parent.exists()
    # The setting is the default recipient; several keys may be given.
    second = generate_key_pair(tmp_path / "k2").recipient
    configured = settings.model_copy(
        update={"backup_recipient": f"{backup_key.recipient}, {second}"}
    )
    made = _backup(platform, factory, configured, out.with_suffix(".gz.age"))
    with pytest.raises(ValidationFailed) as refused:
        _backup(platform, factory, configured, out, unencrypted=True)
    assert refused.value.rule == "backup-encryption" and not out.exists()
    assert made.encrypted_to[0] == backup_key.recipient and len(made.encrypted_to) == 2

    made = _backup(platform, factory, settings, out, unencrypted=True)
    assert made.encrypted_to == [] and out.read_bytes().startswith(b"\x1f\x8b")  # gzip
    into = tmp_path / "restored"
    with target_url(db_url) as url:
        assert not restore_backup(archive=out, into=into, actor="ops", db_url=url).encrypted
    with transaction(factory) as session:
        event = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "backup.create")
            .order_by(AuditEvent.seq.desc())
        )
        assert json.loads(event.details)["encrypted_to"] == []  # on the record as plain


def test_key_files_refused_clearly(tmp_path: Path, backup_key: KeyPair):
    with pytest.raises(Conflict) as refused:
        generate_key_pair(backup_key.private_key.parent)
    assert refused.value.rule == "backup-keygen-exists"
    assert backup_key.private_key.stat().st_mode & 0o077 == 0
    with pytest.raises(ValidationFailed) as refused:
        load_identities(tmp_path / "nowhere.key")
    assert refused.value.rule == "backup-key-missing"
    secret = "AGE-SECRET-KEY-1NOTREALLYAKEYATALL"
    (tmp_path / "bad.key").write_text(f"# a comment\n{secret}\n")
    with pytest.raises(ValidationFailed) as refused:
        load_identities(tmp_path / "bad.key")
    assert refused.value.rule == "backup-key-invalid" and secret not in str(refused.value)
    # The public key is not a private key: restoring with it is refused, not attempted.
    with pytest.raises(ValidationFailed) as refused:
        load_identities(backup_key.public_key)
    assert refused.value.rule == "backup-key-invalid"
