"""The notification job, and reading and marking one's own notices.

The job makes every due notice at most once (unique key) and records what it
made; delivery claims a notice for email before sending it, so a notice is
never emailed twice, and un-claims it if the send fails so the next run tries
again.
"""

from __future__ import annotations

import smtplib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.audit.record import record, take_turn
from sandbox.db.base import transaction, utcnow
from sandbox.errors import NotFound
from sandbox.notifications.mail import mailer
from sandbox.notifications.models import Notification, NotificationCursor
from sandbox.notifications.notices import deadline_notices, decision_notices
from sandbox.settings import Settings

CURSOR = "audit"


@dataclass
class RunResult:
    created: int = 0
    emailed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def make_notifications(session: Session, today: date) -> list[Notification]:
    """Store every notice due ``today`` that has not been made before; one run at a time."""
    take_turn(session)
    cursor = session.get(NotificationCursor, CURSOR) or NotificationCursor(name=CURSOR, seq=0)
    decisions, head = decision_notices(session, cursor.seq)
    candidates = {n.key: n for n in [*deadline_notices(session, today), *decisions]}
    known = set(
        session.scalars(select(Notification.key).where(Notification.key.in_(list(candidates))))
    )
    made = [
        Notification(
            key=key,
            recipient=n.recipient,
            kind=n.kind,
            object=n.object,
            due_on=n.due_on,
            subject=n.subject,
            body=n.body,
        )
        for key, n in candidates.items()
        if key not in known
    ]
    session.add_all(made)
    cursor.seq = head
    session.add(cursor)
    session.flush()
    if made:
        record(
            session,
            actor="platform",
            action="notifications.create",
            object="notifications",
            details={
                "count": len(made),
                "kinds": dict(Counter(n.kind for n in made)),
                "ids": [n.id for n in made],
            },
        )
    return made


def deliver(factory: sessionmaker[Session], settings: Settings) -> tuple[list[int], list[int]]:
    """Email every notice not yet emailed to recipients with an address; (sent, failed) ids."""
    if not settings.smtp_host:
        return [], []
    with transaction(factory) as session:
        take_turn(session)
        pending = session.execute(
            select(Notification, User.email)
            .join(User, User.username == Notification.recipient)
            .where(Notification.emailed_at.is_(None), User.email != "")
            .order_by(Notification.id)
        ).all()
        for n, _ in pending:
            n.emailed_at = utcnow()
        batch = [(n.id, email, n.subject, n.body) for n, email in pending]
        if batch:
            record(
                session,
                actor="platform",
                action="notifications.email",
                object="notifications",
                details={"ids": [b[0] for b in batch]},
            )
    sent: list[int] = []
    if not batch:
        return sent, []
    try:
        with mailer(settings) as send:
            for ident, email, subject, body in batch:
                send(email, subject, body)
                sent.append(ident)
    except (OSError, smtplib.SMTPException):
        pass  # whatever was not sent is un-claimed below and tried again next run
    failed = [b[0] for b in batch if b[0] not in sent]
    if failed:
        with transaction(factory) as session:
            for n in session.scalars(select(Notification).where(Notification.id.in_(failed))):
                n.emailed_at = None
            record(
                session,
                actor="platform",
                action="notifications.email_failed",
                object="notifications",
                details={"ids": failed},
            )
    return sent, failed


def run(factory: sessionmaker[Session], settings: Settings, today: date) -> RunResult:
    """The job: make today's notices, then email what is waiting."""
    with transaction(factory) as session:
        created = len(make_notifications(session, today))
    sent, failed = deliver(factory, settings)
    return RunResult(created, sent, failed)


def list_notifications(
    session: Session, actor: User, unread_only: bool = False
) -> list[Notification]:
    """The actor's own notices, newest first; nobody reads another's."""
    query = select(Notification).where(Notification.recipient == actor.username)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.id.desc())))


def mark_read(*, session: Session, actor: User, notification_id: int) -> Notification:
    notification = session.get(Notification, notification_id)
    if notification is None or notification.recipient != actor.username:
        raise NotFound(f"you have no notification {notification_id}", rule="notification-unknown")
    if notification.read_at is None:
        notification.read_at = utcnow()
        record(
            session,
            actor=actor.username,
            action="notification.read",
            object=f"notification:{notification.id}",
        )
    return notification
