"""Fixtures for control-plane tests: a fresh platform database on SQLite and on PostgreSQL,
a tiny catalogue with valid identifiers, and demo accounts.

After every test the audit chain must still verify: bad input never breaks the record.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import Role, User
from sandbox.accounts.service import create_user
from sandbox.apps.platform import create_app
from sandbox.audit.verify import verify_chain
from sandbox.catalog.identifiers import resident_id_check_char
from sandbox.db.base import make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import platform_engine
from sandbox.settings import Settings, get_settings
from tests.control_plane.helpers import verify_researcher
from tests.databases import fresh_postgres_database
from tests.second_factor import app_of, enrol_user, otp_field

PASSWORD = "correct-horse-battery"
PROVIDER = "city-health-commission"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every control-plane test runs on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'platform.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(environment="test", data_dir=tmp_path / "var", database_url=db_url)


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    ensure_schema(settings.db_url)
    engine = platform_engine(settings)
    yield make_sessionmaker(engine)
    with transaction(make_sessionmaker(engine)) as session:
        result = verify_chain(session)
    engine.dispose()
    assert result.ok, f"audit chain broken after the test: {result.problems}"


def resident_id(rng: random.Random) -> str:
    """A checksum-valid ID number in the non-existent region 990000 (no real person's)."""
    body = f"990000{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += f"{rng.randint(0, 999):03d}"
    return body + resident_id_check_char(body)


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """One conditional dataset (clinic_visits) with 300 rows from 60 patients, one non-open."""
    rng = random.Random(7)
    patients = [resident_id(rng) for _ in range(60)]
    districts = ["梁溪区", "锡山区", "惠山区"]
    rows = [
        {
            "patient_id": rng.choice(patients),
            "district": rng.choice(districts),
            "cost": round(rng.uniform(10, 900), 2),
        }
        for _ in range(300)
    ]
    d = tmp_path / "catalog"
    (d / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), d / "data" / "clinic_visits.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:50]), d / "data" / "secret.parquet")
    columns = [
        {"name": "patient_id", "type": "VARCHAR", "sensitivity": "identifier"},
        {
            "name": "district",
            "type": "VARCHAR",
            "sensitivity": "quasi_identifier",
            "values": districts,
        },
        {"name": "cost", "type": "DOUBLE", "sensitivity": "none", "bounds": [0, 1000]},
    ]
    common = {
        "provider": PROVIDER,
        "domain": "health",
        "summary": "Visits to community clinics.",
        "format": "parquet",
        "update_frequency": "monthly",
        "contact": "data@health.example.invalid",
        "entity": "patient_id",
        "columns": columns,
    }
    (d / "clinic_visits.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "clinic_visits",
                "title": "Clinic visits",
                "open_class": "conditional",
                "conditions": "Accredited institutions.",
                "source": "data/clinic_visits.parquet",
                **common,
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    (d / "secret.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "secret_registry",
                "title": "Secret",
                "open_class": "non_open",
                "source": "data/secret.parquet",
                **common,
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return d


def make_users(
    session: Session, *, verified: bool = True, keys_dir: Path | None = None
) -> dict[str, User]:
    """The demo accounts; the researchers are real-name verified by ``ops`` unless
    ``verified`` is False (an applicant must be, Wuxi Art.6). With ``keys_dir`` (the
    platform's key store) the providers, operator and authority have their authenticator
    set up, as they must before signing in (tests/second_factor.py)."""
    specs = [
        ("alice", Role.researcher, "江南大学"),
        ("bob", Role.researcher, "江南大学"),
        ("health", Role.provider, PROVIDER),
        ("market", Role.provider, "city-market-regulation"),
        ("ops", Role.operator, ""),
        ("auth", Role.authority, ""),
    ]
    users = {
        name: create_user(
            session=session,
            username=name,
            password=PASSWORD,
            role=role,
            display_name=name.title(),
            organisation=org,
        )
        for name, role, org in specs
    }
    if verified:
        for name, role, _ in specs:
            if role == Role.researcher:
                verify_researcher(session, users, name)
    if keys_dir is not None:
        for name, role, _ in specs:
            if role != Role.researcher:
                enrol_user(session, users[name], keys_dir)
    return users


@pytest.fixture
def users(factory: sessionmaker[Session], settings: Settings) -> dict[str, User]:
    with transaction(factory) as session:
        return make_users(session, keys_dir=settings.keys_dir)


@pytest.fixture
def cli_env(
    settings: Settings, users: dict[str, User], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """The ``sandbox`` command pointed at this test's platform (its database and data dir)."""
    monkeypatch.setenv("SANDBOX_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@pytest.fixture
def client(settings: Settings, factory: sessionmaker[Session]) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def login(client: TestClient, username: str) -> dict[str, str]:
    """A bearer token for ``username``; providers, operators and the authority sign in with
    a real TOTP code of the authenticator they are enrolled with (tests/second_factor.py)."""
    data = {"username": username, "password": PASSWORD, **otp_field(app_of(client), username)}
    r = client.post("/api/auth/token", data=data)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
