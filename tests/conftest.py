"""Settings every test runs under (the test environment and a throwaway data directory),
the run's PostgreSQL database when a local server answers, and one line per real part at
the end saying what was skipped."""

from __future__ import annotations

import os
import tempfile

import pytest

from tests import local_postgres, skip_summary

os.environ["SANDBOX_ENVIRONMENT"] = "test"
os.environ.setdefault("SANDBOX_DATA_DIR", tempfile.mkdtemp(prefix="sandbox-test-"))

POSTGRES = pytest.StashKey[local_postgres.LocalPostgres]()


def pytest_configure(config: pytest.Config) -> None:
    """Find PostgreSQL once, in the process that starts the xdist workers: they inherit
    ``SANDBOX_TEST_POSTGRES_URL`` from it."""
    if not hasattr(config, "workerinput"):
        config.stash[POSTGRES] = local_postgres.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    if POSTGRES in config.stash:
        local_postgres.finish(config.stash[POSTGRES])


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if POSTGRES not in config.stash:
        return
    found = config.stash[POSTGRES]
    ran_on = {"postgres": found.where()} if found.url else {}
    why = {"postgres": f"{found.why_not}; set SANDBOX_TEST_POSTGRES_URL"} if found.why_not else {}
    terminalreporter.write_sep("-", "what this run could not use")
    for line in skip_summary.lines(
        terminalreporter.stats.get("skipped", []), ran_on=ran_on, why=why
    ):
        terminalreporter.write_line(line)
