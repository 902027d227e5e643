"""The page ``/rules``: the register in the page's language, reached from every page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sandbox.apps.platform import create_app
from sandbox.db.schema import ensure_schema
from sandbox.refusal_catalogue import RULES
from sandbox.settings import Settings
from tests.web.page_text import untranslated


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("rules")
    settings = Settings(
        environment="test", data_dir=root / "var", database_url=f"sqlite:///{root / 'p.db'}"
    )
    ensure_schema(settings.db_url)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("lang", "heading", "text", "article"),
    [
        ("zh", "规则登记表", "表 <code>{name}</code> 不在协议范围内", "上海条例第28条"),
        ("en", "Register of rules", "relation <code>{name}</code> is not in", "Shanghai Art.28"),
    ],
)
def test_the_register_reads_in_the_pages_language(
    client: TestClient, lang: str, heading: str, text: str, article: str
) -> None:
    client.cookies.set("lang", lang)
    page = client.get("/rules")
    assert page.status_code == 200
    assert heading in page.text and text in page.text and article in page.text
    assert all(f'<tr id="{rule}">' in page.text for rule in RULES)
    assert untranslated(page.text, lang) == []


def test_every_page_links_to_the_register(client: TestClient) -> None:
    assert 'href="/rules"' in client.get("/catalogue").text
