"""Personal data in the platform's database is sealed with the key store's field keys: a
planted name, e-mail address, legal name and OIDC subject are absent from the raw tables
(and the SQLite file), the platform reads them back and finds a subject by its blind
index; migration 0011 seals what a database made by revision 0009 holds, and undoes it.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, select, text

from sandbox.accounts.models import Role, User
from sandbox.accounts.service import create_user
from sandbox.db.base import make_sessionmaker, transaction
from sandbox.db.schema import alembic_config, ensure_schema
from sandbox.db.sealed import field_keys, platform_engine
from sandbox.identity.oidc import link_subject, linked_user
from sandbox.identity.organisations import identity_of, verify_identity
from sandbox.keys.fields import FieldUnreadable
from sandbox.settings import Settings

ISSUER = "https://idp.example.invalid"
PLANTED = {
    "display_name": "祝青霞",
    "email": "zqx.planted@example.invalid",
    "legal_name": "祝青霞本名",
    "subject": "99000019900307123X",
}


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path / 'platform.db'}")
    else:
        from tests.databases import fresh_postgres_database

        database = fresh_postgres_database()
    with database as url:
        yield Settings(environment="test", data_dir=tmp_path / "var", database_url=url)


def _raw_dump(
    settings: Settings, tables: Iterable[str] = ("users", "person_identities", "oidc_links")
) -> str:
    """Every row of ``tables`` (those holding personal data), as the database gives them
    out, and for SQLite the database file's bytes too."""
    raw = create_engine(settings.db_url)
    try:
        with raw.connect() as conn:
            dump = [str(tuple(r)) for t in tables for r in conn.execute(text(f"SELECT * FROM {t}"))]
    finally:
        raw.dispose()
    if settings.db_url.startswith("sqlite:///"):
        dump.append(Path(settings.db_url.removeprefix("sqlite:///")).read_bytes().decode("latin-1"))
    return "\n".join(dump)


def _absent(dump: str, planted: Iterable[str] = PLANTED.values()) -> None:
    for value in planted:
        assert value not in dump and value.encode().decode("latin-1") not in dump


def _reads_back(engine: Engine) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        user = linked_user(session, issuer=ISSUER, subject=PLANTED["subject"])
        identity = identity_of(session, user)
        assert (user.username, user.display_name, user.email) == (
            "zqx",
            PLANTED["display_name"],
            PLANTED["email"],
        )
        assert identity is not None and identity.legal_name == PLANTED["legal_name"]


def test_personal_fields_are_sealed_and_read_back(settings: Settings) -> None:
    ensure_schema(settings.db_url)
    engine = platform_engine(settings)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        ops = create_user(
            session=session, username="ops", password="correct-horse-battery",
            role=Role.operator, display_name="Ops",
        )  # fmt: skip
        create_user(
            session=session, username="zqx", password="correct-horse-battery",
            role=Role.researcher, display_name=PLANTED["display_name"], email=PLANTED["email"],
        )  # fmt: skip
        verify_identity(
            session=session, actor=ops, username="zqx", legal_name=PLANTED["legal_name"],
            verified_how="identity card checked in person", resident_id=None,
            secret_key=settings.secret_key,
        )  # fmt: skip
        link_subject(
            session=session, actor=ops, username="zqx", issuer=ISSUER, subject=PLANTED["subject"]
        )
    engine.dispose()
    _absent(_raw_dump(settings))
    raw = create_engine(settings.db_url)
    engine = platform_engine(settings)
    try:
        _reads_back(engine)
        with transaction(make_sessionmaker(engine)) as session:  # no mail is missed for it
            assert session.scalars(select(User.username).where(User.email != "")).all() == ["zqx"]
        with raw.begin() as conn:  # a sealed value moved into another column does not open
            conn.execute(text("UPDATE users SET display_name = email WHERE username = 'zqx'"))
        with transaction(make_sessionmaker(engine)) as session, pytest.raises(FieldUnreadable) as e:
            session.scalar(select(User).where(User.username == "zqx"))
        assert e.value.rule == "field-unreadable" and "users.display_name" in str(e.value)
    finally:
        engine.dispose()
        raw.dispose()


def test_0011_seals_what_0009_kept_in_clear(settings: Settings) -> None:
    config = alembic_config(settings.db_url)
    command.upgrade(config, "0009")
    raw = create_engine(settings.db_url)
    try:
        with raw.begin() as conn:
            for n, (name, email) in enumerate(
                [("Ops", ""), (PLANTED["display_name"], PLANTED["email"])], 1
            ):
                conn.execute(
                    text(
                        "INSERT INTO users (id, username, display_name, role, organisation,"
                        " email, password_hash, active, created_at)"
                        " VALUES (:id, :u, :n, 'researcher', '', :e, 'x', :t, CURRENT_TIMESTAMP)"
                    ),
                    {"id": n, "u": ["ops", "zqx"][n - 1], "n": name, "e": email, "t": True},
                )
            conn.execute(
                text(
                    "INSERT INTO person_identities (user_id, legal_name, verified, verified_how,"
                    " verified_by) VALUES (2, :n, :t, 'in person', 'ops')"
                ),
                {"n": PLANTED["legal_name"], "t": True},
            )
            conn.execute(
                text(
                    "INSERT INTO oidc_links (issuer, subject, user_id, created_by, created_at)"
                    " VALUES (:i, :s, 2, 'ops', CURRENT_TIMESTAMP)"
                ),
                {"i": ISSUER, "s": PLANTED["subject"]},
            )
        config.attributes["field_keys"] = field_keys(settings)
        command.upgrade(config, "head")
        _absent(_raw_dump(settings))
        engine = platform_engine(settings)
        try:
            _reads_back(engine)
        finally:
            engine.dispose()
        command.downgrade(config, "0009")
        with raw.connect() as conn:
            names = conn.execute(text("SELECT display_name, email FROM users ORDER BY id")).all()
            subject = conn.execute(text("SELECT subject FROM oidc_links")).scalar()
        assert [tuple(r) for r in names] == [
            ("Ops", ""),
            (PLANTED["display_name"], PLANTED["email"]),
        ]
        assert subject == PLANTED["subject"]
    finally:
        raw.dispose()
