"""A platform for page tests: a fresh SQLite database with the control-plane tests' users
and catalogue, served by a real uvicorn on 127.0.0.1, and Debian's chromium for browser tests.

Browser tests skip when /usr/bin/chromium is absent, and fail instead when
SANDBOX_REQUIRE_BROWSER=1 (CI installs chromium, so a skip there is a defect).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.api.app import create_app
from sandbox.applications.service import create_application, submit_application
from sandbox.audit.verify import verify_chain
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.settings import Settings
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.conftest import PASSWORD, catalog_dir, make_users  # noqa: F401
from tests.control_plane.helpers import complete_application, publish_all

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'platform.db'}",
    )


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """The platform's database; after every test the audit chain must still verify."""
    ensure_schema(settings.db_url)
    engine = make_engine(settings.db_url)
    yield make_sessionmaker(engine)
    with transaction(make_sessionmaker(engine)) as session:
        result = verify_chain(session)
    engine.dispose()
    assert result.ok, f"audit chain broken after the test: {result.problems}"


@pytest.fixture
def users(factory: sessionmaker[Session]) -> dict[str, User]:
    with transaction(factory) as session:
        return make_users(session)


@pytest.fixture
def platform(
    factory: sessionmaker[Session],
    users: dict[str, User],
    settings: Settings,
    catalog_dir: Path,  # noqa: F811  (the control-plane tests' fixture, imported above)
) -> dict[str, User]:
    """Users plus the published catalogue (clinic_visits conditional, secret_registry non-open)."""
    publish_all(factory, users, settings, catalog_dir)
    return users


def submit_for_review(factory: sessionmaker[Session], users: dict[str, User], **fields) -> int:
    """A complete application by alice, submitted: the provider's queue has one entry."""
    with transaction(factory) as session:
        app = create_application(
            session=session, actor=users["alice"], fields=complete_application(**fields)
        )
        submit_application(
            session=session, actor=users["alice"], application_id=app.id, today=date.today(),
            calendar=WorkCalendar(),
        )  # fmt: skip
        return app.id


@pytest.fixture
def client(settings: Settings, factory: sessionmaker[Session]) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(settings: Settings, factory: sessionmaker[Session]) -> Iterator[str]:
    """A real uvicorn serving the app on a free loopback port, for the browser."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=_free_port(), log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser_context(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh chromium profile per test: Debian's chromium, never a downloaded one."""
    if not CHROMIUM.exists():
        if os.environ.get("SANDBOX_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and SANDBOX_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            locale="zh-CN",
        )
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context):  # type: ignore[no-untyped-def]
    return browser_context.pages[0] if browser_context.pages else browser_context.new_page()


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Keep a picture of the page as a test artifact (test-artifacts/ is gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/signin")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.narrow button[type=submit]")
    page.wait_for_url(lambda url: "/signin" not in url)
