"""The second factor at sign-in (issue 15 item 3): real TOTP codes from pyotp, over HTTP, on
SQLite and PostgreSQL: who needs one, codes accepted once, recovery codes, first sign-in
enrolment on the pages, the operator's reset, the backoff and the record of every failure,
and the secret sealed with the key store's key."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.attempts import SignInAttempt
from sandbox.accounts.models import Role, User
from sandbox.accounts.secret_box import KEY as SECRET_KEY
from sandbox.accounts.secret_box import (
    KEY_FILE,
    SecretUnreadable,
    account_key,
    seal,
    unseal,
)
from sandbox.accounts.service import create_user
from sandbox.accounts.totp import TotpFactor
from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.http.deps import SESSION_COOKIE
from sandbox.keys.store import KeyStore, key_store
from sandbox.settings import Settings
from sandbox.web.pages.second_factor import PENDING_COOKIE
from tests.control_plane.conftest import PASSWORD, login
from tests.second_factor import CSRF, enrol, next_code, secret_of
from tests.web.test_pages import sign_in

TOKEN = "/api/auth/token"


def token(client: TestClient, username: str, otp: str | None = None):  # noqa: ANN201
    data = {"username": username, "password": PASSWORD}
    if otp is not None:
        data["otp"] = otp
    return client.post(TOKEN, data=data)


def failures(factory: sessionmaker[Session], username: str) -> list[dict[str, str]]:
    with transaction(factory) as session:
        rows = session.scalars(
            select(AuditEvent.details)
            .where(AuditEvent.action == "user.sign_in_failed", AuditEvent.actor == username)
            .order_by(AuditEvent.seq)
        ).all()
    return [json.loads(d) for d in rows]


def add_user(factory: sessionmaker[Session], username: str, role: Role) -> None:
    with transaction(factory) as session:
        create_user(
            session=session, username=username, password=PASSWORD, role=role,
            display_name=username.title(), organisation="city-health-commission",
        )  # fmt: skip


def test_staff_sign_in_with_a_code_that_works_once(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, users
) -> None:
    missing = token(client, "ops")
    assert missing.status_code == 403 and missing.json()["rule"] == "mfa-required"
    assert missing.json()["article"] == "Rizhao Art.29 (R13)"
    code = next_code(factory, settings.keys_dir, "ops")
    wrong = token(client, "ops", code[:-1] + str((int(code[-1]) + 1) % 10))
    assert wrong.status_code == 403 and wrong.json()["rule"] == "mfa-code"
    ok = token(client, "ops", code)
    assert ok.status_code == 200, ok.text
    replayed = token(client, "ops", code)
    assert replayed.status_code == 403 and replayed.json()["rule"] == "mfa-code"
    assert [f["factor"] for f in failures(factory, "ops")] == ["missing", "totp", "totp"]
    with transaction(factory) as session:
        attempts = session.scalars(
            select(SignInAttempt).where(SignInAttempt.username == "ops").order_by(SignInAttempt.id)
        ).all()
    assert [(a.succeeded, a.factor) for a in attempts] == [
        (False, "missing"), (False, "totp"), (True, "totp"), (False, "totp"),
    ]  # fmt: skip
    # A researcher needs none by default (SANDBOX_MFA_RESEARCHERS=optional).
    assert token(client, "alice").status_code == 200


def test_a_wrong_password_never_reaches_the_second_step(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, users
) -> None:
    r = client.post(
        TOKEN,
        data={"username": "ops", "password": "wrong-password", "otp": next_code(
            factory, settings.keys_dir, "ops")},
    )  # fmt: skip
    assert r.status_code == 403 and r.json()["rule"] == "auth"
    assert failures(factory, "ops") == [{"address": "testclient", "channel": "api"}]


def test_a_recovery_code_works_once_in_place_of_a_code(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, users
) -> None:
    add_user(factory, "health2", Role.provider)
    codes = enrol(factory, settings.keys_dir, "health2")
    assert len(codes) == 10 and len(set(codes)) == 10
    assert token(client, "health2", codes[3].lower()).status_code == 200
    again = token(client, "health2", codes[3])
    assert again.status_code == 403 and again.json()["rule"] == "mfa-code"
    with transaction(factory) as session:
        used = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "user.mfa_recovery_code_used")
        ).all()
        stored = session.scalars(select(TotpFactor.user_id)).all()
    assert [json.loads(d)["left"] for d in used] == [9]
    assert stored  # and the codes themselves are nowhere in the database:
    assert codes[3] not in _database_text(factory)


def _database_text(factory: sessionmaker[Session]) -> str:
    from sandbox.accounts.totp import RecoveryCode

    with transaction(factory) as session:
        rows = session.scalars(select(RecoveryCode.code_hash)).all()
        sealed = session.scalars(select(TotpFactor.secret_sealed)).all()
    return " ".join(rows) + " ".join(s.hex() for s in sealed)


def test_wrong_codes_go_through_the_sign_in_backoff(
    settings: Settings, factory: sessionmaker[Session], users
) -> None:
    now = [datetime(2027, 3, 1, 9, 0, tzinfo=UTC)]
    app = create_app(settings)
    app.state.clock = lambda: now[0]
    secret = secret_of(factory, settings.keys_dir, "health")
    with TestClient(app) as client:
        for _ in range(5):
            assert token(client, "health", "999999").json()["rule"] in ("mfa-code",)
        right = pyotp.TOTP(secret).at(now[0])
        throttled = token(client, "health", right)
        assert throttled.status_code == 429, throttled.text
        assert throttled.json()["rule"] == "sign-in-backoff-account"
        now[0] += timedelta(seconds=int(throttled.headers["Retry-After"]))
        ok = token(client, "health", pyotp.TOTP(secret).at(now[0]))
        assert ok.status_code == 200, ok.text
    assert len(failures(factory, "health")) == 5  # the throttled attempt is not written


def test_the_secret_is_sealed_with_the_key_store_and_bound_to_its_account(
    factory: sessionmaker[Session], settings: Settings, users, tmp_path: Path
) -> None:
    secret = secret_of(factory, settings.keys_dir, "ops")
    with transaction(factory) as session:
        ops = session.scalar(select(User).where(User.username == "ops"))
        auth = session.scalar(select(User).where(User.username == "auth"))
        sealed = session.get(TotpFactor, ops.id).secret_sealed
    store = key_store(settings)
    key = account_key(store, settings.keys_dir)
    assert secret.encode() not in sealed and not (settings.keys_dir / KEY_FILE).exists()
    assert unseal(key, sealed, context=f"totp:{ops.id}").decode() == secret
    with pytest.raises(SecretUnreadable):  # another platform's key store
        other = account_key(KeyStore(tmp_path / "other-store"), tmp_path / "other-keys")
        unseal(other, sealed, context=f"totp:{ops.id}")
    with pytest.raises(SecretUnreadable):  # copied into another account's row
        unseal(key, sealed, context=f"totp:{auth.id}")
    store.rotate()  # re-wraps the key: the secret opens as before
    assert secret_of(factory, settings.keys_dir, "ops") == secret


def test_an_earlier_key_file_moves_into_the_key_store(tmp_path: Path) -> None:
    """A deployment from before kept the key in keys_dir: its first use wraps it into the
    key store and destroys the file, and what it sealed still opens."""
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    old = secrets.token_bytes(32)
    (keys_dir / KEY_FILE).write_bytes(old)
    sealed = seal(old, b"JBSWY3DPEHPK3PXP", context="totp:1")  # as it was sealed before
    store = KeyStore(tmp_path / "store")
    key = account_key(store, keys_dir)
    assert not (keys_dir / KEY_FILE).exists() and store.has_data_key(SECRET_KEY)
    assert old not in (tmp_path / "store" / "fields" / f"{SECRET_KEY.name}.json").read_bytes()
    assert unseal(key, sealed, context="totp:1") == b"JBSWY3DPEHPK3PXP"
    assert account_key(store, keys_dir) == old  # read once: from now on, the key store's


def _form_token(page: str) -> str:
    return CSRF.findall(page)[-1]


def test_first_web_sign_in_sets_up_the_authenticator_then_asks_for_its_code(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, users
) -> None:
    add_user(factory, "health2", Role.provider)
    form = client.get("/signin")
    password = client.post(
        "/signin",
        data={"username": "health2", "password": PASSWORD, "csrf_token": _form_token(form.text)},
        follow_redirects=False,
    )
    assert password.status_code == 303 and password.headers["location"] == "/signin/enrol"
    assert PENDING_COOKIE in client.cookies and SESSION_COOKIE not in client.cookies
    assert client.get("/api/me").status_code == 403  # the password alone opens nothing
    assert client.get("/signin/code").status_code == 200  # (the code page is the next step)
    page = client.get("/signin/enrol")
    assert page.status_code == 200
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    assert f"secret={secret}" in page.text  # the otpauth:// link carries the same secret
    wrong = client.post(
        "/signin/enrol", data={"code": "12345", "csrf_token": _form_token(page.text)}
    )
    assert wrong.status_code == 403 and "mfa-code" in wrong.text
    done = client.post(
        "/signin/enrol",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": _form_token(page.text)},
    )
    assert done.status_code == 200, done.text
    assert (
        len(
            re.findall(
                r"<li><code>[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}</code>", done.text
            )
        )
        == 10
    )
    assert client.get("/api/me").json()["username"] == "health2"
    assert [f["factor"] for f in failures(factory, "health2")] == ["totp"]
    # The next sign-in asks for the code, and refuses a replayed one.
    client.cookies.clear()
    form = client.get("/signin")
    password = client.post(
        "/signin",
        data={"username": "health2", "password": PASSWORD, "csrf_token": _form_token(form.text),
              "next": "/provider/publish"},
        follow_redirects=False,
    )  # fmt: skip
    assert password.headers["location"] == "/signin/code?next=/provider/publish"
    page = client.get(password.headers["location"])
    code = next_code(factory, settings.keys_dir, "health2")
    answer = {"code": code, "csrf_token": _form_token(page.text), "next": "/provider/publish"}
    signed_in = client.post("/signin/code", data=answer, follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/provider/publish"
    assert PENDING_COOKIE not in client.cookies
    client.cookies.clear()
    form = client.get("/signin")
    client.post(
        "/signin",
        data={"username": "health2", "password": PASSWORD, "csrf_token": _form_token(form.text)},
        follow_redirects=False,
    )
    page = client.get("/signin/code")
    replay = client.post("/signin/code", data={**answer, "csrf_token": _form_token(page.text)})
    assert replay.status_code == 403 and "mfa-code" in replay.text
    assert client.get("/api/me").status_code == 403
    with transaction(factory) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.object == "user:health2")
        ).all()
    assert "user.mfa_enrol_start" in actions and "user.mfa_enrol" in actions


def test_an_operator_resets_a_lost_authenticator_and_it_is_recorded(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, users
) -> None:
    health = login(client, "health")
    assert client.get("/api/me", headers=health).status_code == 200
    refused = client.delete("/api/users/health/second-factor", headers=login(client, "auth"))
    assert refused.status_code == 403
    r = client.delete("/api/users/health/second-factor", headers=login(client, "ops"))
    assert r.status_code == 204, r.text
    assert client.get("/api/me", headers=health).status_code == 403  # its sessions ended
    again = token(client, "health", "123456")
    assert again.status_code == 403 and again.json()["rule"] == "mfa-enrol"
    with transaction(factory) as session:
        (event,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.mfa_reset")
        ).all()
    assert event.actor == "ops" and event.object == "user:health"
    assert json.loads(event.details)["sessions_ended"] >= 1
    none = client.delete("/api/users/health/second-factor", headers=login(client, "ops"))
    assert none.status_code == 404 and none.json()["rule"] == "mfa-none"


def test_researchers_need_one_when_configured_or_once_they_set_one_up(
    settings: Settings, factory: sessionmaker[Session], users
) -> None:
    required = settings.model_copy(update={"mfa_researchers": "required"})
    with TestClient(create_app(required)) as client:
        r = token(client, "alice")
        assert r.status_code == 403 and r.json()["rule"] == "mfa-enrol"
    with TestClient(create_app(settings)) as client:
        assert token(client, "bob").status_code == 200
        form = client.get("/signin")
        client.post(
            "/signin",
            data={"username": "bob", "password": PASSWORD, "csrf_token": _form_token(form.text)},
        )
        assert 'href="/signin/enrol" id="set-up-authenticator"' in client.get("/account").text
        page = client.get("/signin/enrol")  # from the account, while signed in
        secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
        done = client.post(
            "/signin/enrol",
            data={"code": pyotp.TOTP(secret).now(), "csrf_token": _form_token(page.text)},
        )
        assert done.status_code == 200 and 'href="/account"' in done.text
        assert "set-up-authenticator" not in client.get("/account").text
        r = token(client, "bob")
        assert r.status_code == 403 and r.json()["rule"] == "mfa-required"
        assert token(client, "bob", next_code(factory, settings.keys_dir, "bob")).status_code == 200


def test_the_operator_resets_from_the_sign_in_page(
    client: TestClient, factory: sessionmaker[Session], users
) -> None:
    sign_in(client, "ops")
    page = client.get("/operator/sign-ins")
    assert 'action="/operator/second-factor/reset"' in page.text
    form = {"username": "auth", "csrf_token": _form_token(page.text)}
    done = client.post("/operator/second-factor/reset", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/operator/sign-ins"
    with transaction(factory) as session:
        reset = session.scalars(
            select(AuditEvent.object).where(AuditEvent.action == "user.mfa_reset")
        ).all()
    assert reset == ["user:auth"]
    again = client.post("/operator/second-factor/reset", data=form)
    assert again.status_code == 404 and "mfa-none" in again.text


@pytest.mark.postgres
def test_a_code_accepted_meanwhile_by_another_transaction_is_refused(tmp_path: Path) -> None:
    """PostgreSQL reads committed rows: a transaction that read the authenticator before
    another one accepted a code must still see that code as used once it locks the row."""
    from sandbox.accounts.totp import verify_second_factor
    from sandbox.db.base import make_engine, make_sessionmaker
    from sandbox.db.schema import ensure_schema
    from tests.databases import fresh_postgres_database

    with fresh_postgres_database() as url:
        ensure_schema(url)
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        keys = tmp_path / "keys"
        try:
            add_user(factory, "health2", Role.provider)
            enrol(factory, keys, "health2")
            code = next_code(factory, keys, "health2")
            now = datetime.now(UTC)
            with transaction(factory) as first:
                user = first.scalar(select(User).where(User.username == "health2"))
                seen = first.get(TotpFactor, user.id)  # read (and held) before the other
                before = seen.last_step
                with transaction(factory) as second:
                    other = second.get(User, user.id)
                    assert verify_second_factor(second, other, keys, code, now=now) == "totp"
                assert verify_second_factor(first, user, keys, code, now=now) is None
                assert seen.last_step > before  # the other's step, read again under the lock
        finally:
            engine.dispose()
