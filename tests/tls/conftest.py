"""The query service's world (three provisioned agreements and their tokens) for the
query worker's TLS tests, on SQLite only: what is tested is the wire, not the database."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control_plane.conftest import (  # noqa: F401  (fixtures)
    catalog_dir,
    client,
    factory,
    settings,
    users,
)
from tests.query_service.conftest import world  # noqa: F401  (fixtures)
from tests.workspaces.conftest import docker_client, workspace_image  # noqa: F401  (fixtures)


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'platform.db'}"
