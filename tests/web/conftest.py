"""A platform for page tests: a fresh SQLite database with the control-plane tests' users
and catalogue, served by a real uvicorn on 127.0.0.1, and Debian's chromium for browser tests.

Browser tests skip when /usr/bin/chromium is absent, and fail instead when
SANDBOX_REQUIRE_BROWSER=1 (CI installs chromium, so a skip there is a defect).
"""

from __future__ import annotations

import csv
import io
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import Role, User
from sandbox.accounts.service import create_user
from sandbox.agreements.service import import_agreement
from sandbox.applications.service import create_application, submit_application
from sandbox.apps.platform import create_app
from sandbox.audit.verify import verify_chain
from sandbox.db.base import make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import platform_engine
from sandbox.provisioning.service import provision
from sandbox.settings import Settings
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.conftest import PASSWORD, catalog_dir, make_users  # noqa: F401
from tests.control_plane.helpers import agreement, complete_application, publish_all
from tests.second_factor import app_code, browser_second_step

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
#: The app each live server serves, by its base URL (for the second factor's codes).
SERVED: dict[str, object] = {}


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
    engine = platform_engine(settings)
    yield make_sessionmaker(engine)
    with transaction(make_sessionmaker(engine)) as session:
        result = verify_chain(session)
    engine.dispose()
    assert result.ok, f"audit chain broken after the test: {result.problems}"


@pytest.fixture
def users(factory: sessionmaker[Session], settings: Settings) -> dict[str, User]:
    with transaction(factory) as session:
        return make_users(session, keys_dir=settings.keys_dir)


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


@pytest.fixture
def carol(factory: sessionmaker[Session], platform: dict[str, User]) -> dict[str, User]:
    """The platform plus ``carol``, a researcher whose real name nobody has verified yet."""
    with transaction(factory) as session:
        platform["carol"] = create_user(
            session=session, username="carol", password=PASSWORD, role=Role.researcher,
            display_name="Carol", organisation="江南大学",
        )  # fmt: skip
    return platform


def application_form(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    """The apply page's form for a complete application, submitted (``action=submit``)."""
    form: dict[str, str | list[str]] = {
        "application_type": "sandbox", "title": "Clinic costs",
        "reason": "Public-interest study of clinic costs.",
        "scenario": "District-level aggregates for a report.",
        "purpose": "Compare mean costs across districts.",
        "columns": ["clinic_visits.district", "clinic_visits.cost"],
        "usage_from": "2027-01-01", "usage_until": "2027-06-30", "output_forms": ["dp_table"],
        "mode": "aggregate", "conditions_evidence": "Security certificate no. 42.",
        "commitment_signed": "true", "action": "submit",
    }  # fmt: skip
    form.update(overrides)
    return form


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
    base = f"http://127.0.0.1:{config.port}"
    SERVED[base] = config.app
    yield base
    del SERVED[base]
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
    """The password, then the authenticator's code if the account has a second factor."""
    page.goto(f"{base}/signin")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.narrow button[type=submit]")
    browser_second_step(page, lambda: app_code(SERVED[base], username))
    page.wait_for_url(lambda url: "/signin" not in url)


# --- Export requests -------------------------------------------------------------------

EXPORT_AGREEMENT = "AGR-T-0001"
COUNT_QUERY = "SELECT district, COUNT(*) AS visits FROM clinic_visits GROUP BY district"
#: Few visits cost this much (a round bound, as aggregate mode requires): one cell falls
#: under the threshold of 10.
SMALL_QUERY = (
    "SELECT district, SUM(cost) AS total FROM clinic_visits WHERE cost > 800 GROUP BY district"
)


def png(width: int = 6, height: int = 4) -> bytes:
    """A real (grey) PNG image, so the browser can draw it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))  # fmt: skip


def table_csv(catalog_dir: Path, sql: str) -> str:  # noqa: F811
    """The true result of ``sql`` over the test catalogue's rows, as the researcher's CSV."""
    con = duckdb.connect()
    clinic_visits = con.read_parquet(str(catalog_dir / "data" / "clinic_visits.parquet"))
    clinic_visits.create_view("clinic_visits")
    result = con.execute(sql + " ORDER BY 1")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([d[0] for d in result.description])
    writer.writerows(result.fetchall())
    return out.getvalue()


@pytest.fixture
def export_agreement(
    factory: sessionmaker[Session], platform: dict[str, User], settings: Settings
) -> str:
    """An active agreement letting tables and figures leave, with its workspace built."""
    with transaction(factory) as session:
        import_agreement(
            session=session, actor=platform["health"],
            agreement=agreement(outputs=["dp_table", "table", "figure", "report"]),
        )  # fmt: skip
        provision(
            session=session, settings=settings, actor=platform["ops"],
            agreement_id=EXPORT_AGREEMENT,
        )  # fmt: skip
    return EXPORT_AGREEMENT
