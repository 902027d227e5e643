"""Sending notices by email through the configured SMTP server (settings smtp_host/smtp_port)."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Protocol

from sandbox.settings import Settings


class Send(Protocol):
    def __call__(self, to: str, subject: str, body: str) -> None: ...


@contextmanager
def mailer(settings: Settings) -> Iterator[Send]:
    """One SMTP connection for a batch of messages from ``settings.mail_from``."""
    assert settings.smtp_host, "mailer() needs settings.smtp_host"
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:

        def send(to: str, subject: str, body: str) -> None:
            message = EmailMessage()
            message["From"] = settings.mail_from
            message["To"] = to
            message["Subject"] = subject
            message.set_content(body)
            smtp.send_message(message)

        yield send
