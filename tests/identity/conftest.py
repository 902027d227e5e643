"""Fixtures for identity tests: the control-plane databases and accounts, a running
OpenID Connect provider on 127.0.0.1, and a platform configured to use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from sandbox.apps.platform import create_app
from sandbox.settings import Settings
from tests.control_plane.conftest import db_url, factory, users  # noqa: F401
from tests.identity.provider import CLIENT_ID, CLIENT_SECRET, LocalProvider, running_provider

#: The TestClient's own address: where the provider sends the browser back.
PLATFORM = "http://testserver"


@pytest.fixture
def provider() -> Iterator[LocalProvider]:
    with running_provider() as p:
        yield p


@pytest.fixture
def settings(db_url: str, tmp_path: Path, provider: LocalProvider) -> Settings:  # noqa: F811
    return Settings(
        environment="test",
        data_dir=tmp_path / "var",
        database_url=db_url,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_redirect_url=f"{PLATFORM}/auth/oidc/callback",
        hub_service_token="hub-token-for-tests",
    )


@pytest.fixture
def client(settings: Settings, factory: sessionmaker[Session]) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(settings), base_url=PLATFORM) as c:
        yield c
