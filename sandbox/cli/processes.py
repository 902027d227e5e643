"""Ending a tree of processes for good (Linux ``/proc``): what ``sandbox run`` started, and
what those started in turn.

JupyterHub starts configurable-http-proxy and the idle culler in sessions of their own, so
they get no signal meant for the hub, and outlive it if it dies before stopping them. A
process is named by its id *and* its start time, so an id the kernel has since given to
another process is never signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
#: ``prctl`` option: orphaned descendants are re-parented to this process, not to init.
PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Proc:
    """One process, as the kernel knows it: id, parent and start time (clock ticks)."""

    pid: int
    ppid: int
    started: int


def _read(pid: int) -> tuple[Proc, str] | None:
    """The process and its state letter, or ``None`` when it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and brackets
    return Proc(pid, int(fields[1]), int(fields[19])), fields[0]


def processes() -> list[Proc]:
    """Every process now running."""
    found = (_read(int(p.name)) for p in PROC.iterdir() if p.name.isdigit())
    return [read[0] for read in found if read is not None]


def descendants(pid: int) -> list[Proc]:
    """Every process below ``pid``, children first."""
    by_parent: dict[int, list[Proc]] = {}
    for proc in processes():
        by_parent.setdefault(proc.ppid, []).append(proc)
    out, queue = [], [pid]
    while queue:
        for child in by_parent.get(queue.pop(0), []):
            out.append(child)
            queue.append(child.pid)
    return out


def alive(proc: Proc) -> bool:
    """Whether the very same process still runs (a zombie has ended)."""
    now = _read(proc.pid)
    return now is not None and now[0].started == proc.started and now[1] != "Z"


def _reap(proc: Proc) -> None:
    """Collect the exit status of a child of ours, so it does not linger as a zombie."""
    now = _read(proc.pid)
    if now is not None and now[0].ppid == os.getpid():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(proc.pid, os.WNOHANG)


def _signal(procs: list[Proc], sig: signal.Signals, wait: float) -> list[Proc]:
    """Send ``sig`` to those of ``procs`` alive; those still alive after ``wait`` seconds."""
    targets = [p for p in procs if alive(p)]
    for proc in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
    deadline = time.monotonic() + wait
    while True:
        for proc in targets:
            _reap(proc)
        left = [p for p in targets if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def end(procs: list[Proc], grace: float = 10.0) -> list[Proc]:
    """SIGTERM each process still alive, SIGKILL what remains after ``grace`` seconds;
    returns those that needed SIGKILL."""
    stubborn = _signal(procs, signal.SIGTERM, grace)
    if stubborn:
        _signal(stubborn, signal.SIGKILL, 5.0)
    return stubborn


def become_subreaper() -> None:
    """Make orphaned descendants (a proxy whose hub died) this process's children, so that
    :func:`descendants` still finds them."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
