"""The real services tests need, found or explained.

Each ``require_*`` returns the resource or skips with the reason; when the
matching ``SANDBOX_REQUIRE_*=1`` is set (as ``.ci/run`` does) it fails instead,
because CI never skips. ``tests/conftest.py`` registers the fixtures with::

    from tests.resources import docker_client, postgres_url, chromium_path  # noqa: F401
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest

#: The workspace image images/build.sh builds.
WORKSPACE_IMAGE = os.environ.get("SANDBOX_WORKSPACE_IMAGE", "sandbox-workspace:latest")


def _missing(kind: str, reason: str) -> NoReturn:
    """Skip, or fail when ``SANDBOX_REQUIRE_<KIND>=1`` says the resource must exist."""
    hint = f"{reason} (run .ci/setup.sh as root to install and start it)"
    if os.environ.get(f"SANDBOX_REQUIRE_{kind}") == "1":
        pytest.fail(f"SANDBOX_REQUIRE_{kind}=1 but {hint}", pytrace=False)
    pytest.skip(f"{kind.lower()} unavailable: {hint}")


def require_docker():
    """A docker SDK client for a running engine on which the firewall can be set.

    Workspace tests also need root for iptables and the workspace image.
    """
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure means "no usable engine"
        _missing("DOCKER", f"no Docker engine answers ({type(exc).__name__}: {exc})")
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        _missing("DOCKER", "workspace tests need root and iptables for the firewall rules")
    return client


def require_workspace_image(client) -> str:
    """The built workspace image's tag."""
    from docker.errors import ImageNotFound

    try:
        client.images.get(WORKSPACE_IMAGE)
    except ImageNotFound:
        _missing("DOCKER", f"image {WORKSPACE_IMAGE} is not built (images/build.sh)")
    return WORKSPACE_IMAGE


def require_postgres() -> str:
    """The SQLAlchemy URL of an empty-able test database (``SANDBOX_TEST_POSTGRES_URL``, set
    by CI or to the run's throwaway database on a local server, tests/local_postgres.py)."""
    url = os.environ.get("SANDBOX_TEST_POSTGRES_URL")
    if not url:
        _missing("POSTGRES", "SANDBOX_TEST_POSTGRES_URL is not set and no local server answered")
    try:
        import sqlalchemy

        with sqlalchemy.create_engine(url).connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # any failure means "no usable server"
        _missing("POSTGRES", f"cannot connect to SANDBOX_TEST_POSTGRES_URL ({exc})")
    return url


def require_browser() -> str:
    """The path of Debian's chromium (never a downloaded browser)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path and subprocess.run([path, "--version"], capture_output=True).returncode == 0:
            return path
    _missing("BROWSER", "Debian's chromium is not installed (apt-get install chromium)")


def require_nginx() -> str:
    """The path of Debian's nginx (the TLS-terminating proxy of the operator's guide)."""
    for path in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if path and subprocess.run([path, "-v"], capture_output=True).returncode == 0:
            return path
    _missing("NGINX", "Debian's nginx is not installed (apt-get install nginx-light)")


@pytest.fixture(scope="session")
def docker_client():
    """A docker SDK client (see :func:`require_docker`)."""
    return require_docker()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """See :func:`require_postgres`."""
    return require_postgres()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """See :func:`require_browser`."""
    return require_browser()
