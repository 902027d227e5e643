"""A backup or restore killed outright leaves its plaintext staging folder behind; the
next run in the same place removes it, and never the folder of a run still under way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sandbox.backup.service import create_backup, restore_backup
from sandbox.backup.staging import clear_abandoned
from tests.backup.conftest import Platform, target_url


def _gone_pid() -> int:
    """The id of a process that has run and ended (so nothing runs under it now)."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def _staging(parent: Path, label: str, pid: int) -> Path:
    folder = parent / f".{label}-{pid}-abc123"
    folder.mkdir(parents=True)
    (folder / "sandbox.db").write_bytes(b"SQLite format 3\x00 plaintext left by a killed run")
    return folder


def test_the_next_backup_and_restore_remove_what_a_killed_run_left(
    platform: Platform, factory, settings, db_url, tmp_path, backup_key
):  # noqa: ANN001
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        abandoned = _staging(settings.data_dir, "backup", _gone_pid())
        under_way = _staging(settings.data_dir, "backup", alive.pid)
        out = tmp_path / "out" / "platform.tar.gz.age"
        create_backup(
            factory=factory, settings=settings, actor=platform.users["ops"], out=out,
            recipients=[backup_key.recipient],
        )  # fmt: skip
        assert not abandoned.exists() and under_way.is_dir()
        assert not list(settings.data_dir.glob(f".backup-{os.getpid()}-*"))  # its own: gone

        into = tmp_path / "restored" / "var"
        left = _staging(into.parent, "var.restore", _gone_pid())
        with target_url(db_url) as url:
            restore_backup(
                archive=out, into=into, actor="ops", db_url=url, key=backup_key.private_key
            )
        assert not left.exists() and into.is_dir()
        assert sorted(p.name for p in into.parent.iterdir()) == ["var"]
    finally:
        alive.kill()
        alive.wait()
    assert clear_abandoned(settings.data_dir, "backup") == [under_way]
