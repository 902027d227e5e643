"""The test run's own parts: the summary lines per real part, and the local PostgreSQL
search (against a real socket directory and loopback port where nothing listens)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import local_postgres
from tests.resources import require_postgres
from tests.skip_summary import lines


def _skipped(reason: str, *markers: str) -> pytest.TestReport:
    keywords = {"test_x": 1, **dict.fromkeys(markers, 1)}
    longrepr = ("tests/x.py", 1, f"Skipped: {reason}")
    return pytest.TestReport("tests/x.py::test_x", ("tests/x.py", 1, "x"), keywords, "skipped",
                             longrepr, "setup")  # fmt: skip


def test_each_part_gets_one_line_with_its_count_and_commonest_reason() -> None:
    skipped = [
        _skipped("postgres unavailable: nothing answered"),
        _skipped("postgres unavailable: nothing answered", "browser"),
        _skipped("/usr/bin/chromium is not installed", "browser"),
        _skipped("docker unavailable: no engine"),
        _skipped("docker unavailable: image not built", "docker"),
        _skipped("docker unavailable: image not built", "docker"),
        _skipped("nothing to do with a part"),
    ]
    assert lines(skipped, ran_on={}, why={}) == [
        "postgres: 2 tests skipped — postgres unavailable: nothing answered",
        "docker: 3 tests skipped — docker unavailable: image not built (and 1 other reasons)",
        "browser: 1 test skipped — /usr/bin/chromium is not installed",
    ]


def test_a_part_with_nothing_skipped_says_what_it_ran_on_and_why_replaces_the_reason() -> None:
    skipped = [_skipped("postgres unavailable: not set")]
    assert lines(skipped, ran_on={"docker": "the engine"}, why={"postgres": "searched X"}) == [
        "postgres: 1 test skipped — searched X",
        "docker: no test skipped (ran on the engine)",
        "browser: no test skipped",
    ]


def test_the_search_names_every_place_it_tried_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A socket file with no server behind it, as a crashed server leaves.
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(tmp_path / f".s.PGSQL.{port}"))
    monkeypatch.setenv("PGHOST", str(tmp_path))
    monkeypatch.setenv("PGPORT", str(port))
    monkeypatch.setattr(local_postgres, "SOCKET_DIRS", ())

    found = local_postgres.find_and_create()

    assert (found.url, found.created) == (None, None)
    assert f"{tmp_path}/.s.PGSQL.{port}: " in found.why_not
    assert f"127.0.0.1:{port}: " in found.why_not
    assert "refused" in found.why_not.lower()


def test_a_configured_url_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local_postgres.URL_VARIABLE, "postgresql+psycopg://ci:pw@127.0.0.1/x")
    found = local_postgres.start()
    assert (found.url, found.created) == ("postgresql+psycopg://ci:pw@127.0.0.1/x", None)
    assert found.where() == "postgresql+psycopg://ci:***@127.0.0.1/x"


@pytest.mark.postgres
def test_the_end_drops_the_runs_database_and_its_leftovers_and_nothing_else() -> None:
    postgres_url = require_postgres()
    run = f"sbxtest_{uuid.uuid4().hex[:10]}"
    names = [run, f"t_{run}_left", f"t_{run}x_other_run"]
    server = create_engine(make_url(postgres_url), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=run).render_as_string(hide_password=False)

    local_postgres.finish(local_postgres.LocalPostgres(url=url, created=run, place="here"))

    with server.connect() as conn:
        left = set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
        conn.execute(text(f'DROP DATABASE IF EXISTS "{names[2]}"'))
    server.dispose()
    assert names[2] in left and not {names[0], names[1]} & left
