"""SIGTERM and SIGINT stop ``sandbox run`` and ``sandbox serve`` cleanly.

uvicorn handles the signals while it serves, shuts the server down, then raises the
signal again with the handler it found. Python's default for SIGTERM ends the process at
once, before any ``finally`` runs: the hub, its proxy and culler, the query workers and
the firewall chains used to outlive ``sandbox run``. Inside :func:`stop_on_signals` the
handler it finds is ours, which raises :class:`Stop`: the stack unwinds through every
``finally`` (the duties timer, the workspaces' stop), and the command then exits with
status 128 + the signal's number, as a shell reports a process the signal ended.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import typer

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop(BaseException):
    """A stop signal arrived: unwind (a ``BaseException``, like ``KeyboardInterrupt``, so
    that no ``except Exception`` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn the first SIGTERM or SIGINT into :class:`Stop`, ignore any further one while
    the clean-up runs, and exit with 128 + the signal's number."""
    stopping = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return  # cleaning up already: a second signal must not cut it short
        stopping = True
        raise Stop(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    except Stop as stop:
        typer.echo(f"stopped cleanly on {stop}")
        raise typer.Exit(128 + stop.signum) from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
