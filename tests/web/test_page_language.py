"""One language at a time (issue 14 item 3): every page each role reaches, in Chinese and in
English, reads wholly in that language outside code, identifiers and data.

The platform is the demo's (``sandbox.demo.seed``) plus what people add through the pages
(an upload awaiting its declaration, an export request, an objection and a complaint, a
refused form). Each role's walk starts at its home and every page without a path
parameter and follows every link to a page of this site; each page's text is read as
``tests/web/page_text.py`` describes, and the test fails listing each untranslated string
with its page.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Match

from sandbox.apps.platform import create_app
from sandbox.db.base import make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import platform_engine
from sandbox.demo.seed import DEMO_PASSWORD, seed_demo
from sandbox.settings import Settings
from sandbox.web import pages as page_modules
from sandbox.web.rendering import PageRoute
from sandbox.workcalendar import WorkCalendar
from tests.second_factor import enrol, through_second_step
from tests.web.page_text import untranslated, visible_text
from tests.web.test_pages import CSRF

#: Who walks: the public and one account of each role (a provider with an application to
#: review, the researcher with an aggregate-mode agreement and the one with an application).
WALKERS = ("", "alice", "bob", "wuxi-health-commission", "wuxi-market-regulation", "operator",
           "authority")  # fmt: skip
#: Pages of one route visited at most (datasets, applications ...): enough to see each kind.
PER_ROUTE = 3
HREF = re.compile(r'<a\b[^>]*?\bhref="([^"#]*)"[^>]*>')
#: Links that are not pages: files, the language switch, signing out.
NOT_PAGES = re.compile(r"^/(api|static|lang)/|\.(jsonl|csv|zip|pem|pub|png|json)$|^/docs|^/redoc")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    """The demo platform, seeded once for every walk, and the page of the upload added."""
    root = tmp_path_factory.mktemp("demo")
    settings = Settings(
        environment="test", data_dir=root / "var", database_url=f"sqlite:///{root / 'p.db'}"
    )
    ensure_schema(settings.db_url)
    engine = platform_engine(settings)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        seed_demo(session, settings, WorkCalendar())
    for username in WALKERS[3:]:  # staff sign in with their authenticator
        enrol(factory, settings.keys_dir, username)
    engine.dispose()
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        yield client, _add_through_the_pages(client, root)


def _sign_in(client: TestClient, username: str) -> None:
    client.cookies.clear()
    if not username:
        return
    form = client.get("/signin")
    token = CSRF.search(form.text)
    assert token
    answer = client.post(
        "/signin",
        data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    answer = through_second_step(client, answer, username)
    assert answer.status_code == 303, answer.text


def _token(client: TestClient, path: str) -> str:
    found = CSRF.search(client.get(path).text)
    assert found, path
    return found.group(1)


def _add_through_the_pages(client: TestClient, root: Path) -> str:
    """What the demo does not seed: an objection and a complaint, an export request, an
    upload waiting for its declaration (whose page is returned: no link leads to it)."""
    dataset = "/datasets/outpatient_visits"
    for kind, fields in (
        ("objections", {"submitter": "张三", "contact": "z@example.invalid",
                        "description": "区县名称有误"}),
        ("complaints", {"complainant": "李四", "contact": "l@example.invalid", "kind": "privacy",
                        "description": "涉及个人隐私", "evidence": "见附件"}),
    ):  # fmt: skip
        sent = client.post(
            f"{dataset}/{kind}", data={**fields, "csrf_token": _token(client, dataset)}
        )
        assert sent.status_code == 200, sent.text
    _sign_in(client, "alice")
    new = "/researcher/agreements/AGR-2026-0001/exports/new"
    sent = client.post(
        "/researcher/agreements/AGR-2026-0001/exports",
        data={"purpose": "季节性分析代码", "action": "submit", "form": "code",
              "csrf_token": _token(client, new)},
        files=[("files", ("analysis.py", b"import pandas as pd\n"))],
        follow_redirects=False,
    )  # fmt: skip
    assert sent.status_code == 303, sent.text
    _sign_in(client, "wuxi-health-commission")
    csv = root / "visits.csv"
    csv.write_text("district,visits\n梁溪区,12\n", encoding="utf-8")
    sent = client.post(
        "/provider/publish",
        data={"encoding": "auto", "csrf_token": _token(client, "/provider/publish")},
        files=[("data", ("visits.csv", csv.read_bytes()))],
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    client.cookies.clear()
    return sent.headers["location"]


def _page_routes() -> list[PageRoute]:
    """Every page: the GET routes of the page routers."""
    modules = pkgutil.iter_modules(page_modules.__path__)
    return [
        r
        for m in modules
        for r in importlib.import_module(f"{page_modules.__name__}.{m.name}").router.routes
        if isinstance(r, PageRoute) and "GET" in r.methods
    ]


def _route_of(routes: list[PageRoute], path: str) -> str | None:
    scope = {"type": "http", "path": path, "method": "GET"}
    return next((r.path for r in routes if r.matches(scope)[0] == Match.FULL), None)


def walk(
    client: TestClient, username: str, lang: str, also: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Every page ``username`` reaches in ``lang`` from its home, the pages without path
    parameters and ``also``: its address -> its untranslated strings."""
    _sign_in(client, username)
    client.cookies.set("lang", lang)
    routes = _page_routes()
    start = [r.path for r in routes if "{" not in r.path and not NOT_PAGES.search(r.path)]
    start += also
    queue, seen, per_route, found = list(start), set(start), Counter[str](), {}
    while queue:
        path = queue.pop(0)
        answer = client.get(path, follow_redirects=False)
        if answer.status_code in (303, 307) or "text/html" not in answer.headers["content-type"]:
            continue
        found[path] = untranslated(answer.text, lang)
        for href in HREF.findall(answer.text):
            target = urlsplit(urljoin(f"http://127.0.0.1{path}", href.replace("&amp;", "&")))
            link = target.path + (f"?{target.query}" if target.query else "")
            if target.netloc != "127.0.0.1" or link in seen or NOT_PAGES.search(target.path):
                continue
            route = _route_of(routes, target.path)
            if route is None or per_route[route] >= PER_ROUTE or target.path == "/signin":
                continue
            per_route[route] += 1
            seen.add(link)
            queue.append(link)
    return found


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_reads_in_one_language(demo: tuple[TestClient, str], lang: str) -> None:
    client, upload_page = demo
    problems, visited, routes = [], 0, set()
    all_routes = _page_routes()
    for username in WALKERS:
        also = (upload_page,) if username == "wuxi-health-commission" else ()
        for path, strings in walk(client, username, lang, also).items():
            visited += 1
            routes.add(_route_of(all_routes, urlsplit(path).path))
            problems += [f"{username or 'public'} {path}: {s!r}" for s in strings]
    client.cookies.clear()
    assert visited > 200 and len(routes) >= 37, (visited, sorted(map(str, routes)))
    assert not problems, f"{len(problems)} untranslated on {lang} pages:\n" + "\n".join(problems)


def test_the_reader_finds_the_other_language_and_leaves_data_alone() -> None:
    """The check itself: an English word on a Chinese page is found, and Chinese on an
    English one; code, data marked translate="no" and the other language's name are not."""
    page = (
        '<p title="Close">提交 <b>under review</b></p><code>SELECT 1</code>'
        '<span translate="no">门诊 Outpatient</span><a lang="en">English</a> CSV 文件'
        '<input placeholder="名称"><textarea>typed text</textarea>'
    )
    assert untranslated(page, "zh") == ["Close", "under review"]
    assert untranslated(page, "en") == ["提交", "CSV 文件", "名称"]
    assert "English" not in visible_text(page, "zh") and "English" in visible_text(page, "en")
