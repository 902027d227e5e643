"""When the record's head gets signed: every N events or T seconds, and when the server stops.

A checkpoint protects only the events at or before it, and only once the authority holds
a copy (:mod:`.authority_copy`): the operator can delete the events after the newest
checkpoint the authority kept and re-sign the shorter head. So the head is signed often
enough that this unanchored tail stays short — at most ``every_events`` events, and no
event stays unanchored longer than ``every_seconds`` (plus one poll of the timer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.checkpoint import load_signing_key, make_checkpoint
from sandbox.audit.models import AuditCheckpoint, AuditEvent
from sandbox.db.base import read_only, transaction


@dataclass(frozen=True)
class Uncovered:
    """The record's tail that no signed checkpoint covers yet."""

    #: ``seq`` of the last event (0: the record is empty).
    head: int
    #: ``seq`` of the newest checkpoint at or before the head (0: none).
    covered: int
    #: When the first event after ``covered`` was recorded (``None``: nothing uncovered).
    oldest_at: datetime | None

    @property
    def count(self) -> int:
        return max(self.head - self.covered, 0)


def checkpoint_due(
    uncovered: Uncovered, *, now: datetime, every_events: int, every_seconds: int
) -> str | None:
    """Why the head must be signed now, or ``None``; 0 turns a trigger off.

    Pure, with the time passed in, so the timer's decision is tested without waiting.
    """
    if uncovered.count == 0:
        return None
    if every_events and uncovered.count >= every_events:
        return f"{uncovered.count} events not under a checkpoint (every {every_events} events)"
    if every_seconds and uncovered.oldest_at is not None:
        age = (now - uncovered.oldest_at).total_seconds()
        if age >= every_seconds:
            return (
                f"the oldest event not under a checkpoint is {age:.0f} s old "
                f"(every {every_seconds} s)"
            )
    return None


def read_uncovered(session: Session) -> Uncovered:
    """The head, the newest checkpoint at or before it, and the first uncovered event's time."""
    head = session.scalar(select(func.max(AuditEvent.seq))) or 0
    covered = (
        session.scalar(select(func.max(AuditCheckpoint.seq)).where(AuditCheckpoint.seq <= head))
        or 0
    )
    oldest_at = None
    if head > covered:
        first = session.scalar(
            select(AuditEvent.at).where(AuditEvent.seq > covered).order_by(AuditEvent.seq).limit(1)
        )
        oldest_at = parse_instant(first) if first else None
    return Uncovered(head=head, covered=covered, oldest_at=oldest_at)


def checkpoint_if_due(
    factory: sessionmaker[Session],
    keys_dir: Path,
    *,
    now: datetime,
    every_events: int,
    every_seconds: int,
) -> AuditCheckpoint | None:
    """Sign the head when :func:`checkpoint_due` says so; the check itself takes no write lock."""
    with read_only(factory) as session:
        due = checkpoint_due(
            read_uncovered(session), now=now, every_events=every_events, every_seconds=every_seconds
        )
    return sign_head(factory, keys_dir) if due else None


def sign_head(factory: sessionmaker[Session], keys_dir: Path) -> AuditCheckpoint | None:
    """A signed checkpoint of the head (the one already made, if any); ``None`` while the
    record is empty."""
    with transaction(factory) as session:
        if session.scalar(select(AuditEvent.seq).limit(1)) is None:
            return None
        return make_checkpoint(session, load_signing_key(keys_dir))


def parse_instant(text: str) -> datetime:
    """The inverse of :func:`sandbox.audit.canonical.format_instant`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
