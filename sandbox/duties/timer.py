"""A timer thread that runs the recurring duties while the platform serves.

It runs once at start (catching up on whatever fell due while the platform was
down; even if stopped at once) and then every ``interval`` seconds, on its own
database engine. A run that raises is logged and tried again at the next tick:
the server never stops for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from sandbox.clock import today
from sandbox.db.base import make_sessionmaker
from sandbox.db.sealed import platform_engine
from sandbox.duties.run import DutiesReport, run_duties
from sandbox.settings import Settings

log = logging.getLogger("sandbox.duties")


class DutyTimer:
    def __init__(
        self,
        settings: Settings,
        interval: float,
        *,
        on_report: Callable[[DutiesReport], None] | None = None,
        clock: Callable[[], date] = today,
    ):
        self.settings, self.interval = settings, interval
        self.on_report, self.clock = on_report, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sandbox-duties", daemon=True)

    def start(self) -> DutyTimer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to end and wait for a run under way to finish."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        engine = platform_engine(self.settings)
        factory = make_sessionmaker(engine)
        try:
            while True:  # at least one run, even when stopped at once
                self._run_once(factory)
                if self._stop.wait(self.interval):
                    return
        finally:
            engine.dispose()

    def _run_once(self, factory: sessionmaker[Session]) -> None:
        try:
            report = run_duties(self.settings, factory, today=self.clock())
        except Exception:  # the server outlives a failed run; the next tick retries
            log.exception("recurring duties failed")
            return
        for duty, error in report.errors.items():
            log.warning("duty %s failed: %s", duty, error)
        if self.on_report is not None:
            self.on_report(report)
