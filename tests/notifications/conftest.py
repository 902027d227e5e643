"""The control-plane fixtures (SQLite and PostgreSQL, demo users, a tiny catalogue)."""

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller

from tests.control_plane.conftest import (  # noqa: F401
    catalog_dir,
    client,
    db_url,
    factory,
    settings,
    users,
)


@dataclass
class Inbox:
    """What the local SMTP server received: (recipients, message text)."""

    port: int
    messages: list[tuple[list[str], str]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode("utf-8")))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[Inbox]:
    """A real SMTP server on loopback, started for the test."""
    inbox = Inbox(free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()
