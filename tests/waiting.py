"""Waiting for a process the test started to answer over HTTP."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def eventually(
    check: Callable[[], bool],
    what: str,
    *,
    limit: float = 240,
    proc: subprocess.Popen[str] | None = None,
) -> None:
    """Return once ``check()`` holds; fail if ``proc`` ends first or ``limit`` seconds pass.
    A refused or dropped connection counts as not yet."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc is not None:
            assert proc.poll() is None, f"{what}: the command ended early:\n{proc.communicate()[0]}"
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{what} never answered")
