"""The signing key on disk, and checkpoints made, exported and read back."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.checkpoint import (
    KEY_FILE,
    fingerprint_hex,
    load_signing_key,
    make_checkpoint,
    public_key_hex,
    read_checkpoint,
    signed,
    stored_checkpoints,
    write_checkpoint,
)
from sandbox.db.base import transaction
from sandbox.errors import SandboxError, ValidationFailed
from tests.audit.conftest import append


def test_the_key_is_made_once_private_and_reloaded(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = load_signing_key(keys)
    assert stat.S_IMODE((keys / KEY_FILE).stat().st_mode) == 0o600
    assert public_key_hex(load_signing_key(keys)) == public_key_hex(made)


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_signing_key(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(SandboxError, match="mode 644.*chmod 600"):
        load_signing_key(tmp_path)


def test_a_missing_key_is_not_made_when_asked_not_to(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no audit signing key at"):
        load_signing_key(tmp_path, create=False)
    assert not (tmp_path / KEY_FILE).exists()


def test_a_checkpoint_signs_the_head_once(factory: sessionmaker[Session], tmp_path: Path) -> None:
    key = load_signing_key(tmp_path)
    append(factory, 4)
    with transaction(factory) as session:
        first = make_checkpoint(session, key)
    with transaction(factory) as session:
        again = make_checkpoint(session, key)
        stored = list(stored_checkpoints(session, public_key_hex(key)))
    assert (first.seq, first.at, first.signature) == (again.seq, again.at, again.signature)
    assert first.key_fingerprint == fingerprint_hex(public_key_hex(key))
    assert len(stored) == 1 and stored[0].signature_problem() is None


def test_an_empty_record_has_nothing_to_checkpoint(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with pytest.raises(SandboxError, match="empty"), transaction(factory) as session:
        make_checkpoint(session, load_signing_key(tmp_path))


def test_an_exported_checkpoint_reads_back_and_detects_a_changed_field(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    key = load_signing_key(tmp_path)
    append(factory, 2)
    with transaction(factory) as session:
        made = signed(make_checkpoint(session, key), public_key_hex(key))
    path = tmp_path / "checkpoint.json"
    write_checkpoint(made, path)
    assert set(json.loads(path.read_text())) == {"seq", "hash", "at", "signature", "public_key"}
    assert read_checkpoint(path) == made

    data = json.loads(path.read_text())
    data["seq"] = 1
    path.write_text(json.dumps(data))
    assert "does not verify" in read_checkpoint(path).signature_problem()


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("not json", "not a readable checkpoint file"),
        ('{"seq": 1}', "exactly the fields"),
        (
            '{"seq": "1", "hash": "", "at": "", "signature": "", "public_key": ""}',
            "seq must be int",
        ),
    ],
)
def test_a_malformed_checkpoint_file_is_refused(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_text(content)
    with pytest.raises(ValidationFailed, match=complaint):
        read_checkpoint(path)
