"""Staging folders that hold plaintext (the database dump, the unencrypted tar) while a
backup or a restore runs.

Each carries its owner's process id. A run killed outright (SIGKILL, power loss) cannot
remove its own folder, and a plaintext dump must not outlive the run that made it (R16:
nothing kept that the platform no longer needs), so the next run in the same place
removes every folder whose process has gone. A folder whose process still runs belongs
to a run under way and stays. A recycled process id only delays the removal to a later
run; it never removes a live run's folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("sandbox.backup")


def make_staging(parent: Path, label: str) -> Path:
    """A new private folder ``.<label>-<pid>-<random>`` in ``parent``, after clearing the
    abandoned ones of the same label."""
    clear_abandoned(parent, label)
    return Path(tempfile.mkdtemp(prefix=f".{label}-{os.getpid()}-", dir=parent))


@contextmanager
def staging_folder(parent: Path, label: str) -> Iterator[Path]:
    """:func:`make_staging` for the length of a ``with`` block, removed afterwards."""
    path = make_staging(parent, label)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clear_abandoned(parent: Path, label: str) -> list[Path]:
    """Remove the ``label`` staging folders in ``parent`` whose process no longer runs."""
    removed = []
    for path in parent.glob(f".{label}-*-*"):
        pid = path.name[len(label) + 2 :].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            log.warning("removed %s, left behind by a backup or restore that was killed", path)
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True
