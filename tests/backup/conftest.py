"""The control-plane fixtures (SQLite and PostgreSQL, demo users, a tiny catalogue), and a
platform with workspaces, export requests and releases to back up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.orm import Session

from export_review.requests import create_request, review_request, submit_request
from export_review.rerun import own_cursors
from export_review.workflow import ExportAction, ExportStatus
from sandbox.accounts.models import User
from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.service import change_status, import_agreement
from sandbox.backup.crypto import KeyPair, generate_key_pair
from sandbox.db.base import transaction
from sandbox.keys.store import key_store
from sandbox.provisioning.service import provision
from sandbox.settings import Settings
from tests.control_plane.conftest import (  # noqa: F401
    catalog_dir,
    client,
    db_url,
    factory,
    settings,
    users,
)
from tests.control_plane.helpers import agreement, publish_all
from tests.databases import fresh_postgres_database

TABLE = "district,visits\n梁溪区,120\n锡山区,98\n".encode()


@dataclass(frozen=True)
class Platform:
    """The users, and the export requests by what a backup must do with them."""

    users: dict[str, User]
    #: pending: AGR-T-0001, checked and waiting for review (its files are kept);
    #: released: AGR-T-0001, released (files and bundle kept);
    #: ended_draft: AGR-T-0002, a draft when the agreement ended (files left out, R16);
    #: ended_release: AGR-T-0002, released before it ended (bundle kept, files left out).
    requests: dict[str, int]


@pytest.fixture
def platform(factory, users, settings, catalog_dir) -> Platform:  # noqa: ANN001
    """Two provisioned workspaces with export requests; AGR-T-0002 has been terminated
    but not yet destroyed."""
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        for agreement_id in ("AGR-T-0001", "AGR-T-0002"):
            import_agreement(
                session=session,
                actor=users["health"],
                agreement=agreement(id=agreement_id, outputs=["dp_table", "table"]),
            )
            provision(
                session=session, settings=settings, actor=users["ops"], agreement_id=agreement_id
            )
        requests = {
            "pending": _export(session, settings, users, "AGR-T-0001", "table.csv", []),
            "released": _export(
                session, settings, users, "AGR-T-0001", "visits.csv", ["start_review", "approve"]
            ),
            "ended_draft": _export(session, settings, users, "AGR-T-0002", "draft.csv", None),
            "ended_release": _export(
                session, settings, users, "AGR-T-0002", "out.csv", ["start_review", "approve"]
            ),
        }
        change_status(
            session=session,
            actor=users["health"],
            agreement_id="AGR-T-0002",
            action=AgreementAction.terminate,
            reason="ended by the parties",
            today=date.today(),
        )
    return Platform(users, requests)


def _export(
    session: Session,
    settings: Settings,
    users: dict[str, User],
    agreement_id: str,
    name: str,
    review: list[str] | None,
) -> int:
    """An export request by alice: a draft (``review`` None), submitted, or reviewed by health."""
    req = create_request(
        session=session,
        settings=settings,
        actor=users["alice"],
        agreement_id=agreement_id,
        purpose="Table 1 of the report",
        files=[(name, TABLE)],
    )
    if review is None:
        return req.id
    submit_request(
        session=session,
        actor=users["alice"],
        request_id=req.id,
        cursors=own_cursors(key_store(settings)),
    )
    for action in review:
        review_request(
            session=session,
            settings=settings,
            actor=users["health"],
            request_id=req.id,
            action=ExportAction(action),
        )
    assert req.status == (ExportStatus.released if review else ExportStatus.checked)
    return req.id


@pytest.fixture
def backup_key(tmp_path: Path) -> KeyPair:
    """The operator's key pair, kept apart from the platform's data directory."""
    return generate_key_pair(tmp_path / "operator")


@contextmanager
def target_url(db_url: str) -> Iterator[str | None]:
    """Where a restore puts the database: a new SQLite file, or an empty PostgreSQL database."""
    if db_url.startswith("sqlite"):
        yield None
    else:
        with fresh_postgres_database() as url:
            yield url


def assert_empty(url: str | None) -> None:
    """A PostgreSQL restore target holds no table (a SQLite one is a file in the data dir)."""
    if url is not None:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert inspect(conn).get_table_names() == []
        finally:
            engine.dispose()
