"""The notebook client and the ``%%sql`` magic against the service on a real uvicorn (loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from query_guard.client import QueryBlocked, QueryRefused, connect
from tests.query_service.conftest import AGGREGATE, World, assert_close_to

BY_DISTRICT = (
    "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district ORDER BY district"
)


def test_sql_returns_a_dataframe_with_the_agreement_numbers(
    live_url: str, world: World, tmp_path: Path
) -> None:
    expected = world.direct(AGGREGATE, BY_DISTRICT, tmp_path)
    with connect(f"{live_url}/qs", world.tokens[AGGREGATE], progress=None) as db:
        df = db.sql(BY_DISTRICT)
        assert list(df.columns) == ["district", "n"]
        assert_close_to(list(df.itertuples(index=False, name=None)), expected)
        assert db.last_decision["action"] == "rewrite"
        assert db.scope()["id"] == AGGREGATE


def test_blocked_query_raises_with_every_reason(live_url: str, world: World) -> None:
    with (
        connect(f"{live_url}/qs", world.tokens[AGGREGATE], progress=None) as db,
        pytest.raises(QueryBlocked) as caught,
    ):
        db.sql("SELECT patient_id FROM clinic_visits")
    assert caught.value.rule == "QG-007" and caught.value.reasons[0].article
    assert "QG-007" in str(caught.value)


def test_other_refusals_raise_query_refused(live_url: str, world: World) -> None:
    with (
        connect(f"{live_url}/qs", "not-a-token", progress=None) as db,
        pytest.raises(QueryRefused) as caught,
    ):
        db.sql(BY_DISTRICT)
    assert not isinstance(caught.value, QueryBlocked)
    assert caught.value.rule == "workspace-token" and caught.value.status == 401


def test_connect_reads_the_workspace_environment(
    live_url: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_QUERY_URL", f"{live_url}/qs")
    monkeypatch.setenv("SANDBOX_TOKEN", world.tokens[AGGREGATE])
    with connect(progress=None) as db:
        assert db.scope()["mode"] == "aggregate"
    monkeypatch.delenv("SANDBOX_TOKEN")
    with pytest.raises(QueryRefused, match="SANDBOX_TOKEN"):
        connect()


def test_sql_cell_magic(
    live_url: str, world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    from query_guard import magic

    monkeypatch.setenv("SANDBOX_QUERY_URL", f"{live_url}/qs")
    monkeypatch.setenv("SANDBOX_TOKEN", world.tokens[AGGREGATE])
    monkeypatch.setattr(magic, "_connection", None)
    shell = interactiveshell.InteractiveShell()
    shell.run_line_magic("load_ext", "query_guard.client")
    shell.run_cell_magic("sql", "visits", BY_DISTRICT)
    assert shell.user_ns["visits"]["n"].sum() == pytest.approx(300, rel=0.2)  # perturbed
    assert shell.run_cell_magic("sql", "", "SELECT patient_id FROM clinic_visits") is None
    assert "QG-007" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("lang", "locale", "shown"),
    [
        ("zh", "en_US.UTF-8", "汇总模式的协议不允许返回行级结果"),
        (None, "zh_CN.UTF-8", "汇总模式的协议不允许返回行级结果"),
        ("en", "zh_CN.UTF-8", "row-level results are not allowed"),
        (None, "C.UTF-8", "row-level results are not allowed"),
    ],
)
def test_reasons_print_in_the_workspace_language_with_rule_and_article(
    live_url: str,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    lang: str | None,
    locale: str,
    shown: str,
) -> None:
    """``connect(lang=...)``, else the locale; the rule id stays and the article is named in
    the language chosen, while ``message`` keeps the service's own text."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", locale)
    with (
        connect(f"{live_url}/qs", world.tokens[AGGREGATE], progress=None, lang=lang) as db,
        pytest.raises(QueryBlocked) as caught,
    ):
        db.sql("SELECT district FROM clinic_visits")
    printed = str(caught.value)
    assert shown in printed and "[QG-009]" in printed, printed
    assert caught.value.reasons[0].message.startswith("row-level results are not allowed")
    zh = shown.startswith("汇总")
    assert ("协议" in printed.split(shown)[1]) == zh  # the article: 协议 AGR-… 条款 mode
    assert ("查询被拦截" in printed) == zh
