"""The demo as `make run` seeds it: the researchers sign in with the printed password alone,
the staff with a code of the printed demo authenticator secret too."""

from __future__ import annotations

from pathlib import Path

import pyotp
from fastapi.testclient import TestClient

from sandbox.apps.platform import create_app
from sandbox.db.base import make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import platform_engine
from sandbox.demo.seed import DEMO_PASSWORD, DEMO_TOTP_SECRET, seed_demo
from sandbox.settings import Settings
from sandbox.workcalendar import WorkCalendar


def test_demo_staff_sign_in_with_the_printed_secret(tmp_path: Path) -> None:
    settings = Settings(
        environment="test", data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'p.db'}"
    )
    ensure_schema(settings.db_url)
    engine = platform_engine(settings)
    with transaction(make_sessionmaker(engine)) as session:
        seed_demo(session, settings, WorkCalendar())
    engine.dispose()
    with TestClient(create_app(settings)) as client:

        def token(username: str, **otp: str) -> dict[str, str]:
            data = {"username": username, "password": DEMO_PASSWORD, **otp}
            return client.post("/api/auth/token", data=data).json()

        assert "access_token" in token("alice")
        assert token("operator")["rule"] == "mfa-required"
        assert "access_token" in token("operator", otp=pyotp.TOTP(DEMO_TOTP_SECRET).now())
        code = pyotp.TOTP(DEMO_TOTP_SECRET).now()
        wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
        assert token("authority", otp=wrong)["rule"] == "mfa-code"
