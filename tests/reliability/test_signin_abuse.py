"""Failed sign-ins are recorded (account, address, time) and slow the next attempt down per
account and per address — a capped, doubling wait, never a lockout — with a 429, a
Retry-After and a message naming the rule, on the sign-in page, the API token endpoint
and the hub's endpoint. The client address comes from trusted proxies only; the operator
sees the failures by account and by address.

The platform's clock is stepped by the test (``app.state.clock``), so the waits are shown
growing without any test waiting for them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tornado import web

from hub_config.auth import ControlPlaneAuthenticator
from hub_config.control_plane import HttpControlPlane, SignInThrottled
from sandbox.accounts.attempts import SignInAttempt
from sandbox.accounts.backoff import ACCOUNT, ADDRESS, CAP_SECONDS
from sandbox.accounts.models import User
from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.settings import Settings
from tests.control_plane.conftest import PASSWORD, login
from tests.e2e.servers import Served
from tests.second_factor import otp_field
from tests.web.test_pages import csrf_token
from tests.workspaces.hub import free_port

PROXY = "10.0.0.2"
HUB_TOKEN = "hub-service-token-for-the-backoff-tests"


class Clock:
    """The platform's time, moved on by the test."""

    def __init__(self) -> None:
        # A minute from now: the staff's authenticators were set up just now, and a code
        # of a time step before the last one used is refused as a replay.
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _client(settings: Settings, clock: Clock, **update: Any) -> TestClient:
    """The platform behind a reverse proxy at ``PROXY`` (trusted unless ``update`` says)."""
    app = create_app(
        settings.model_copy(
            update={"trusted_proxies": [PROXY], "hub_service_token": HUB_TOKEN, **update}
        )
    )
    app.state.clock = clock
    return TestClient(app, client=(PROXY, 41000))


@pytest.fixture
def proxied(
    settings: Settings, factory: sessionmaker[Session], users: dict[str, User], clock: Clock
) -> Iterator[TestClient]:
    with _client(settings, clock) as client:
        yield client


def token(client: TestClient, username: str, password: str, address: str) -> Any:
    """With the right password, staff give their authenticator's code at the platform's time."""
    otp = otp_field(client.app, username) if password == PASSWORD else {}
    return client.post(
        "/api/auth/token",
        data={"username": username, "password": password, **otp},
        headers={"X-Forwarded-For": address},
    )


def attempts(factory: sessionmaker[Session]) -> list[SignInAttempt]:
    with transaction(factory) as session:
        return list(session.scalars(select(SignInAttempt).order_by(SignInAttempt.id)))


def events(factory: sessionmaker[Session], action: str) -> list[dict[str, Any]]:
    with transaction(factory) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [
            {"actor": e.actor, "object": e.object, "at": e.at, **json.loads(e.details)}
            for e in rows
        ]


def assert_waits(response: Any, rule: str, seconds: int) -> None:
    """A 429 that says how long to wait, in the header and the body, and names the rule."""
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == str(seconds)
    body = response.json()
    assert body["rule"] == rule and body["retry_after"] == seconds
    assert body["article"] == "Rizhao Art.29 (R13)"
    assert f"wait {seconds} s before trying again" in body["error"]


def test_a_failed_sign_in_is_recorded_with_account_address_and_time(
    proxied: TestClient, factory: sessionmaker[Session], clock: Clock
) -> None:
    r = token(proxied, "alice", "not-her-password", "198.51.100.7")
    assert r.status_code == 403 and r.json()["rule"] == "auth"
    page = proxied.post(
        "/signin",
        data={
            "username": "nobody-by-this-name",
            "password": "guess",
            "csrf_token": csrf_token(proxied, "/signin"),
        },
        headers={"X-Forwarded-For": "198.51.100.8"},
    )
    assert page.status_code == 403 and "auth" in page.text
    [api, web_] = attempts(factory)
    assert (api.username, api.address, api.channel, api.succeeded) == (
        "alice",
        "198.51.100.7",
        "api",
        False,
    )
    assert api.at.replace(tzinfo=UTC) == clock.now
    assert (web_.username, web_.address, web_.channel) == (
        "nobody-by-this-name",
        "198.51.100.8",
        "web",
    )
    recorded = events(factory, "user.sign_in_failed")
    assert [(e["object"], e["address"], e["channel"]) for e in recorded] == [
        ("user:alice", "198.51.100.7", "api"),
        ("user:nobody-by-this-name", "198.51.100.8", "web"),
    ]
    assert "not-her-password" not in json.dumps(recorded)  # never the password
    assert token(proxied, "alice", PASSWORD, "198.51.100.7").status_code == 200
    assert attempts(factory)[-1].succeeded


def test_the_account_wait_doubles_up_to_its_cap_and_ends_with_a_success(
    proxied: TestClient, factory: sessionmaker[Session], clock: Clock
) -> None:
    """Each guess from a new address: only the account rule holds them back."""
    addresses = (f"203.0.113.{i}" for i in range(1, 200))
    for _ in range(ACCOUNT.free):
        assert token(proxied, "health", "guess", next(addresses)).status_code == 403
    waits = []
    for _ in range(12):
        throttled = token(proxied, "health", "guess", next(addresses))
        assert throttled.status_code == 429
        waits.append(int(throttled.headers["Retry-After"]))
        assert_waits(throttled, ACCOUNT.rule, waits[-1])
        # While it holds, even the right password is not looked at, and nothing is written.
        before = len(attempts(factory))
        assert token(proxied, "health", PASSWORD, next(addresses)).status_code == 429
        assert len(attempts(factory)) == before
        clock.advance(waits[-1])
        assert token(proxied, "health", "guess", next(addresses)).status_code == 403
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, CAP_SECONDS, CAP_SECONDS, CAP_SECONDS]

    clock.advance(CAP_SECONDS)
    assert token(proxied, "health", PASSWORD, next(addresses)).status_code == 200
    # A success starts the count again: the next failure is free.
    assert token(proxied, "health", "guess", next(addresses)).status_code == 403


def test_a_reviewer_is_not_kept_out_by_guesses_from_elsewhere(
    proxied: TestClient, clock: Clock
) -> None:
    """The account rule spares addresses the account signed in from before: an attacker
    cannot lock a provider's reviewer out of their own account."""
    office = "198.51.100.20"
    assert token(proxied, "health", PASSWORD, office).status_code == 200
    clock.advance(3600)
    for i in range(ACCOUNT.free):
        assert token(proxied, "health", "guess", f"203.0.113.{i}").status_code == 403
    assert token(proxied, "health", "guess", "203.0.113.99").status_code == 429
    # From an address it never used, the reviewer waits like anyone (at most the cap)...
    assert token(proxied, "health", PASSWORD, "192.0.2.55").status_code == 429
    # ... but not from the office it signs in from.
    form = {"username": "health", "password": PASSWORD}
    page = proxied.post(
        "/signin",
        data={**form, "csrf_token": csrf_token(proxied, "/signin")},
        headers={"X-Forwarded-For": office},
        follow_redirects=False,
    )
    assert page.status_code == 303 and page.headers["location"] == "/signin/code"
    code = {"code": otp_field(proxied.app, "health")["otp"]}
    page = proxied.post(
        "/signin/code",
        data={**code, "csrf_token": csrf_token(proxied, "/signin/code")},
        headers={"X-Forwarded-For": office},
        follow_redirects=False,
    )  # the second step from the office is exempt from the account's wait too
    assert page.status_code == 303 and page.headers["location"] == "/provider"
    assert token(proxied, "health", PASSWORD, office).status_code == 200


def test_one_address_trying_many_accounts_is_slowed_down(proxied: TestClient, clock: Clock) -> None:
    address = "198.51.100.66"
    for i in range(ADDRESS.free):
        assert token(proxied, f"user-{i}", "guess", address).status_code == 403
    assert_waits(token(proxied, "alice", PASSWORD, address), ADDRESS.rule, 1)
    clock.advance(1)
    assert token(proxied, "bob", "guess", address).status_code == 403
    assert_waits(token(proxied, "auth", "guess", address), ADDRESS.rule, 2)
    # Others are not held up, and the wait ends: it is never a lockout.
    assert token(proxied, "alice", PASSWORD, "198.51.100.67").status_code == 200
    clock.advance(2)
    assert token(proxied, "alice", PASSWORD, address).status_code == 200


def test_the_sign_in_page_says_how_long_to_wait_and_why(proxied: TestClient) -> None:
    def attempt() -> Any:
        token = csrf_token(proxied, "/signin")
        form = {"username": "ops", "password": "guess", "csrf_token": token}
        headers = {"X-Forwarded-For": "198.51.100.9"}
        return proxied.post("/signin", data=form, headers=headers, follow_redirects=False)

    for _ in range(ACCOUNT.free):
        assert attempt().status_code == 403
    page = attempt()
    assert page.status_code == 429 and page.headers["Retry-After"] == "1"
    assert "text/html" in page.headers["content-type"]
    assert ACCOUNT.rule in page.text and "Rizhao Art.29" in page.text
    assert "请等待 1 秒后再试" in page.text


def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    settings: Settings,
    factory: sessionmaker[Session],
    users: dict[str, User],
    clock: Clock,
) -> None:
    cases = [
        # (trusted proxies, X-Forwarded-For, the address recorded)
        ([], "198.51.100.1", PROXY),  # default: the socket peer, the header ignored
        ([PROXY], "198.51.100.2", "198.51.100.2"),
        (["10.0.0.0/8"], "198.51.100.3, 10.0.0.9", "198.51.100.3"),  # two proxies
        ([PROXY], "192.0.2.1, 198.51.100.4", "198.51.100.4"),  # a forged first hop
        ([PROXY], "not-an-address", PROXY),  # garbage ends the walk at the proxy
        (["192.0.2.0/24"], "198.51.100.5", PROXY),  # the peer is not a trusted proxy
    ]
    for i, (proxies, forwarded, _) in enumerate(cases):
        with _client(settings, clock, trusted_proxies=proxies) as client:
            r = client.post(
                "/api/auth/token",
                data={"username": f"case-{i}", "password": "guess"},
                headers={"X-Forwarded-For": forwarded},
            )
            assert r.status_code == 403
    assert [a.address for a in attempts(factory)] == [expected for *_, expected in cases]

    with pytest.raises(ValidationError, match="SANDBOX_TRUSTED_PROXIES: 'proxy.example'"):
        Settings(trusted_proxies=["proxy.example"])


def test_the_hub_sign_in_shares_the_backoff(
    proxied: TestClient, factory: sessionmaker[Session]
) -> None:
    hub = {"Authorization": f"Bearer {HUB_TOKEN}"}

    def ask(password: str, address: str = "198.51.100.30") -> Any:
        body = {"username": "alice", "password": password, "address": address}
        return proxied.post("/api/hub/authenticate", json=body, headers=hub)

    for _ in range(ACCOUNT.free):
        assert ask("guess").json() == {"authenticated": False}
    assert_waits(ask(PASSWORD), ACCOUNT.rule, 1)
    hub_attempts = [a for a in attempts(factory) if a.channel == "hub"]
    assert {a.address for a in hub_attempts} == {"198.51.100.30"}
    # The same account through the API waits too: the hub is no way around the rule.
    assert token(proxied, "alice", PASSWORD, "192.0.2.77").status_code == 429


def test_the_hub_shows_the_platforms_wait(
    settings: Settings, factory: sessionmaker[Session], users: dict[str, User], clock: Clock
) -> None:
    """The hub's authenticator against a real platform over HTTP: it passes the address
    on, and a 429 becomes the hub's own 429 with the platform's message."""
    app = create_app(settings.model_copy(update={"hub_service_token": HUB_TOKEN}))
    app.state.clock = clock
    served = Served(app, "127.0.0.1", free_port())
    try:
        plane = HttpControlPlane(served.url, HUB_TOKEN)
        for _ in range(ACCOUNT.free):
            assert not asyncio.run(plane.authenticate("bob", "guess", "198.51.100.40"))
        with pytest.raises(SignInThrottled) as throttled:
            asyncio.run(plane.authenticate("bob", PASSWORD, "198.51.100.40"))
        assert throttled.value.retry_after == 1
        assert ACCOUNT.rule in str(throttled.value)
        auth = ControlPlaneAuthenticator(control_plane=plane)
        with pytest.raises(web.HTTPError) as refused:
            asyncio.run(auth.authenticate(None, {"username": "bob", "password": PASSWORD}))
        assert refused.value.status_code == 429
        assert "wait 1 s" in refused.value.get_message()
    finally:
        served.stop()
    assert {a.address for a in attempts(factory)} == {"198.51.100.40"}


def test_the_operator_sees_failures_by_account_and_address(
    proxied: TestClient, clock: Clock
) -> None:
    for i in range(ACCOUNT.free):
        token(proxied, "health", "guess", f"203.0.113.{i}")
    for name in ("x1", "x2", "x3"):
        token(proxied, name, "guess", "198.51.100.50")
    ops = login(proxied, "ops")
    report = proxied.get("/api/operator/sign-in-failures", headers=ops)
    assert report.status_code == 200, report.text
    body = report.json()
    health = next(r for r in body["by_account"] if r["key"] == "health")
    assert health["failures"] == ACCOUNT.free and health["spread"] == ACCOUNT.free
    assert health["wait_seconds"] == 1 and health["rule"] == ACCOUNT.rule
    busy = next(r for r in body["by_address"] if r["key"] == "198.51.100.50")
    assert busy["failures"] == 3 and busy["spread"] == 3 and busy["wait_seconds"] == 0
    assert len(body["recent"]) == ACCOUNT.free + 3
    assert body["recent"][0]["username"] in {"x1", "x2", "x3"}

    page = proxied.get("/operator/sign-ins", headers=ops)
    assert page.status_code == 200
    assert 'id="failures-by-account"' in page.text and 'data-key="health"' in page.text
    assert 'data-key="198.51.100.50"' in page.text and ACCOUNT.rule in page.text

    clock.advance(25 * 3600)  # past the default day: nothing listed
    assert proxied.get("/api/operator/sign-in-failures", headers=ops).json()["recent"] == []
    week = proxied.get("/api/operator/sign-in-failures?hours=168", headers=ops).json()
    assert len(week["recent"]) == ACCOUNT.free + 3

    researcher = login(proxied, "alice")
    refused = proxied.get("/api/operator/sign-in-failures", headers=researcher)
    assert refused.status_code == 403 and refused.json()["rule"] == "role"
    too_far = proxied.get("/api/operator/sign-in-failures?hours=100000", headers=ops)
    assert too_far.status_code == 422
