"""The API documentation (/docs, /redoc) works with no internet: each page references only
this origin, and the app itself serves everything referenced, with the right content type.

The browser test (in CI) renders /docs and /redoc in Debian's chromium while every request
that would leave 127.0.0.1 is aborted and recorded: none may be.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from sandbox.api.docs_pages import ASSETS
from sandbox.web.rendering import HERE
from tests.web.conftest import screenshot

DOC_PAGES = ("/docs", "/redoc")
#: The content type each kind of referenced URL must be served with.
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".ico": "image/vnd.microsoft.icon",
}


class _References(HTMLParser):
    """Every URL a page's markup makes the browser load (or the docs' scripts fetch)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:  # Swagger UI's configuration: ``url: '/openapi.json'``
            self.urls += re.findall(r"\burl:\s*'([^']+)'", data)


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("path", DOC_PAGES)
def test_doc_page_references_only_this_origin(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text, "an absolute URL: the page would load it from outside"
    urls = references(page.text)
    assert "/openapi.json" in urls and "/favicon.ico" in urls
    assert any(u.startswith(ASSETS) and u.endswith(".js") for u in urls)
    for url in urls:
        parts = urlsplit(url)
        assert url.startswith("/") and not url.startswith("//"), url
        assert not parts.scheme and not parts.netloc, url


@pytest.mark.parametrize("path", DOC_PAGES)
def test_everything_a_doc_page_references_is_served(client: TestClient, path: str) -> None:
    for url in references(client.get(path).text):
        answer = client.get(url)
        assert answer.status_code == 200, url
        expected = CONTENT_TYPES[Path(urlsplit(url).path).suffix]
        assert answer.headers["content-type"].startswith(expected), (url, answer.headers)
        assert len(answer.content) > 0, url


def test_doc_assets_carry_their_licences() -> None:
    """Apache-2.0 asks for its licence and NOTICE with a copy; MIT for its notice."""
    apidocs = HERE / "static" / "apidocs"
    assert "Apache License" in (apidocs / "swagger-ui" / "LICENSE").read_text()
    assert (apidocs / "swagger-ui" / "NOTICE").is_file()
    assert "MIT License" in (apidocs / "redoc" / "LICENSE").read_text()


def test_cdn_pages_are_gone(client: TestClient) -> None:
    """Swagger UI's online validator is off (its badge is an image from outside), and the
    pages allow images from this origin only (ReDoc's sidebar logo would come from outside)."""
    docs = client.get("/docs")
    assert '"validatorUrl": null' in docs.text
    for path in DOC_PAGES:
        assert client.get(path).headers["content-security-policy"] == "img-src 'self' data:"


def _offline(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Abort every request that would leave 127.0.0.1; return the list of those aborted."""
    aborted: list[str] = []

    def route(route) -> None:  # type: ignore[no-untyped-def]
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return aborted


@pytest.mark.browser
def test_docs_render_offline(page, live_server: str, client: TestClient) -> None:
    """Swagger UI lists every operation of the schema; ReDoc shows them too; nothing the
    pages asked for was outside 127.0.0.1."""
    schema = client.get("/openapi.json").json()
    operations = [op for item in schema["paths"].values() for op in item.values()]
    aborted = _offline(page)

    page.goto(f"{live_server}/docs")
    page.wait_for_selector(".opblock")
    screenshot(page, "api-docs-swagger")
    assert page.locator(".opblock").count() == len(operations)

    summary = operations[0]["summary"]
    page.goto(f"{live_server}/redoc")
    page.get_by_text(summary, exact=True).first.wait_for(state="attached")
    screenshot(page, "api-docs-redoc")
    assert aborted == []
