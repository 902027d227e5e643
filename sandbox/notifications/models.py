"""Stored notices, and how far the job has read the audit record for decisions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``recipient|kind|object|due``: unique, so the same notice is never made twice.
    key: Mapped[str] = mapped_column(String(400), unique=True)
    recipient: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    #: What the notice is about, as the record names it (``application:3``).
    object: Mapped[str] = mapped_column(String(120))
    due_on: Mapped[date | None] = mapped_column(default=None)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When delivery claimed it for email; ``None`` while not (yet) emailed.
    emailed_at: Mapped[datetime | None] = mapped_column(default=None)
    read_at: Mapped[datetime | None] = mapped_column(default=None)


class NotificationCursor(Base):
    """The last audit ``seq`` whose decisions have been turned into notices."""

    __tablename__ = "notification_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
