"""The thread inside ``sandbox serve`` that signs the record's head when it is due, and once
more when the server stops, so a clean stop leaves no event unanchored.

It polls the database rather than counting this process's appends, so the events query
workers append count too; each poll first links what a worker killed between its commit and
its link left in the outbox. A failed check or signature is logged and retried at the next
poll: the server never stops for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.anchoring import checkpoint_if_due, sign_head
from sandbox.audit.models import AuditCheckpoint
from sandbox.audit.outbox import link_pending
from sandbox.db.base import make_engine, make_sessionmaker, utcnow
from sandbox.settings import Settings

log = logging.getLogger("sandbox.audit.anchor")

#: Seconds between checks: how much later than due a checkpoint can come.
POLL_SECONDS = 1.0


class CheckpointTimer:
    def __init__(
        self,
        settings: Settings,
        *,
        poll: float = POLL_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings, self.poll, self.clock = settings, poll, clock
        #: The checkpoint signed on stop (``None`` for an empty record, or if it failed).
        self.final: AuditCheckpoint | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sandbox-checkpoints", daemon=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckpointTimer | None:
        """A timer, or ``None`` when both triggers are off."""
        if settings.checkpoint_every_events or settings.checkpoint_every_seconds:
            return cls(settings)
        return None

    def start(self) -> CheckpointTimer:
        self._thread.start()
        return self

    def stop(self) -> AuditCheckpoint | None:
        """End the polling and wait for the final checkpoint of the head."""
        self._stop.set()
        self._thread.join()
        return self.final

    def _loop(self) -> None:
        engine = make_engine(self.settings.db_url)
        factory = make_sessionmaker(engine)
        try:
            while not self._stop.wait(self.poll):
                self._check(factory)
            self.final = self._sign(factory)
        finally:
            engine.dispose()

    def _check(self, factory: sessionmaker[Session]) -> None:
        try:
            link_pending(factory)  # events a dead worker committed and did not link
            checkpoint_if_due(
                factory,
                self.settings.keys_dir,
                now=self.clock(),
                every_events=self.settings.checkpoint_every_events,
                every_seconds=self.settings.checkpoint_every_seconds,
            )
        except Exception:  # the server outlives a failed check; the next poll retries
            log.exception("audit checkpoint failed")

    def _sign(self, factory: sessionmaker[Session]) -> AuditCheckpoint | None:
        try:
            return sign_head(factory, self.settings.keys_dir)
        except Exception:
            log.exception("the final audit checkpoint failed")
            return None
