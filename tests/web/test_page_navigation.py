"""Finding one's way (issue 14 item 4): an anonymous visit to a page that needs an account
goes to sign in and, once signed in, back to that page (never to another site); an address
with no page gets a "not found" page in the interface language; the site has a favicon.

All over HTTP with the app's TestClient on a real database.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from sandbox.accounts.models import User
from sandbox.web import pages as page_modules
from sandbox.web.rendering import PageRoute
from sandbox.web.return_to import same_site_path
from tests.control_plane.conftest import PASSWORD
from tests.second_factor import through_second_step
from tests.web.test_pages import CSRF, sign_in

NEXT_FIELD = re.compile(r'<input type="hidden" name="next" value="([^"]*)">')
HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
#: Addresses a browser could take to another site, or that are not a path at all.
ELSEWHERE = [
    "//evil.example/researcher", "///evil.example", "/\\evil.example", "/\\/evil.example",
    "/\t/evil.example", "/\n/evil.example", "https://evil.example/", "http:/evil.example",
    "javascript:alert(1)", "evil.example", "researcher", "", " /researcher", "/" + "a" * 2001,
]  # fmt: skip


def signed_in_from(client: TestClient, next_page: str, username: str = "alice") -> str:
    """Sign in on ``/signin?next=…`` as a browser would; the address the form sends to."""
    form = client.get("/signin", params={"next": next_page})
    assert form.status_code == 200
    token = CSRF.search(form.text)
    assert token
    data = {"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    carried = NEXT_FIELD.search(form.text)
    if carried:
        data["next"] = carried.group(1)
    answer = client.post("/signin", data=data, follow_redirects=False)
    answer = through_second_step(client, answer, username)  # staff: the code, then back
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def test_an_anonymous_visit_signs_in_and_comes_back(
    client: TestClient, platform: dict[str, User]
) -> None:
    wanted = "/researcher/applications/new?dataset=clinic_visits"
    away = client.get(wanted, follow_redirects=False)
    assert away.status_code == 303
    to = urlsplit(away.headers["location"])
    assert to.path == "/signin" and parse_qs(to.query) == {"next": [wanted]}
    assert signed_in_from(client, wanted) == wanted
    back = client.get(wanted)
    assert back.status_code == 200 and 'name="title"' in back.text


def test_every_page_needing_an_account_sends_an_anonymous_visitor_to_sign_in(
    client: TestClient, platform: dict[str, User]
) -> None:
    """Every GET page without path parameters: public, or a redirect to sign in and back;
    never a bare refusal."""
    pages = [
        r.path
        for module in pkgutil.iter_modules(page_modules.__path__)
        for r in importlib.import_module(f"{page_modules.__name__}.{module.name}").router.routes
        if isinstance(r, PageRoute) and "GET" in r.methods and "{" not in r.path
    ]
    assert {"/researcher", "/provider", "/operator", "/authority", "/account"} <= set(pages)
    sent = []
    for path in pages:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code in (200, 303, 307), (path, answer.status_code)
        location = urlsplit(answer.headers.get("location", ""))
        if location.path == "/signin":
            assert parse_qs(location.query) == {"next": [path]}, path
            sent.append(path)
    assert "/researcher/applications/new" in sent and "/operator/backups" in sent
    assert "/authority/statistics" in sent and "/provider/publish" in sent
    assert "/catalogue" not in sent and "/signin" not in sent
    with_id = client.get("/provider/applications/1", follow_redirects=False)
    assert with_id.headers["location"] == "/signin?next=%2Fprovider%2Fapplications%2F1"


@pytest.mark.parametrize(("username", "home"), [("health", "/provider"), ("ops", "/operator")])
def test_each_role_comes_back_to_its_own_page(
    client: TestClient, platform: dict[str, User], username: str, home: str
) -> None:
    wanted = f"{home}?tab=1"
    assert client.get(wanted, follow_redirects=False).status_code == 303
    assert signed_in_from(client, wanted, username) == wanted
    assert client.get(wanted).status_code == 200


@pytest.mark.parametrize("elsewhere", ELSEWHERE)
def test_sign_in_never_sends_anyone_to_another_site(
    client: TestClient, platform: dict[str, User], elsewhere: str
) -> None:
    """The form does not carry such a ``next``, and a forged one is ignored: the role's home."""
    form = client.get("/signin", params={"next": elsewhere})
    assert form.status_code == 200 and not NEXT_FIELD.search(form.text)
    token = CSRF.search(form.text)
    assert token
    answer = client.post(
        "/signin",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token.group(1),
              "next": elsewhere},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/researcher"


def test_same_site_path_accepts_paths_only() -> None:
    assert same_site_path("/researcher/applications/3?x=1#y") == "/researcher/applications/3?x=1#y"
    assert same_site_path("/datasets/门诊就诊") == "/datasets/门诊就诊"
    assert same_site_path("/%2F%2Fevil.example") == "/%2F%2Fevil.example"  # a path here
    for value in ELSEWHERE:
        assert same_site_path(value) is None, value


def test_a_signed_in_user_of_another_role_is_still_refused(
    client: TestClient, platform: dict[str, User]
) -> None:
    sign_in(client, "alice")
    answer = client.get("/operator", follow_redirects=False)
    assert answer.status_code == 403 and 'class="rule">role<' in answer.text


def test_a_failed_sign_in_shows_the_form_again_still_knowing_where_to_return(
    client: TestClient, platform: dict[str, User]
) -> None:
    form_url = "/signin?next=%2Fresearcher"
    form = client.get(form_url)
    token = CSRF.search(form.text)
    assert token
    answer = client.post(
        "/signin",
        data={"username": "alice", "password": "wrong", "csrf_token": token.group(1),
              "next": "/researcher"},
        headers={"referer": f"http://127.0.0.1{form_url}"},
    )  # fmt: skip
    assert answer.status_code == 403 and 'class="rule">auth<' in answer.text
    assert 'id="signin-form"' in answer.text
    assert NEXT_FIELD.findall(answer.text) == ["/researcher"]


@pytest.mark.parametrize(
    ("lang", "heading", "other"),
    [("zh", "页面不存在", "请求被拒绝"), ("en", "Page not found", "Request refused")],
)
def test_an_address_with_no_page_is_not_found_in_the_interface_language(
    client: TestClient, platform: dict[str, User], lang: str, heading: str, other: str
) -> None:
    client.cookies.set("lang", lang)
    answer = client.get("/researcher/no-such-page", headers=HTML)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert f'<h1 id="not-found">{heading}</h1>' in answer.text
    assert "<code>/researcher/no-such-page</code>" in answer.text and other not in answer.text
    missing = client.get("/datasets/no_such_dataset", headers=HTML)  # the service's 404
    assert missing.status_code == 404 and f"<h1>{heading}</h1>" in missing.text
    assert other not in missing.text and 'class="rule">dataset-unknown<' in missing.text


def test_the_not_found_page_keeps_the_menu_of_the_signed_in(
    client: TestClient, platform: dict[str, User]
) -> None:
    sign_in(client, "alice")
    answer = client.get("/nowhere", headers=HTML)
    assert answer.status_code == 404 and 'id="menu-account"' in answer.text


def test_api_clients_keep_the_json_404(client: TestClient) -> None:
    for path in ("/api/nowhere", "/nowhere"):
        answer = client.get(path, headers={"accept": "application/json"})
        assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}
    assert client.post("/catalogue", headers=HTML).status_code == 405  # other errors unchanged


def test_the_site_has_a_favicon(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
    page = client.get("/catalogue")
    assert '<link rel="icon" href="/favicon.ico"' in page.text


@pytest.mark.browser
def test_in_the_browser_sign_in_comes_back_and_a_lost_page_says_so(
    page, live_server: str, platform: dict[str, User]
) -> None:
    """The browser sends its own Accept header and follows the redirects itself."""
    wanted = f"{live_server}/researcher/applications/new?dataset=clinic_visits"
    page.goto(wanted)
    assert urlsplit(page.url).path == "/signin"
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.narrow button[type=submit]")
    page.wait_for_url(wanted)
    assert page.locator("input[name=title]").count() == 1
    lost = page.goto(f"{live_server}/researcher/lost")
    assert lost is not None and lost.status == 404
    assert page.inner_text("#not-found") == "页面不存在"
    assert page.locator("#menu-account").count() == 1


def test_back_and_the_language_switch_stay_on_this_site(client: TestClient) -> None:
    """``back`` follows the referring page of this host, query kept, but never a path that a
    browser would read as another host."""
    cases = {
        "http://127.0.0.1/catalogue?q=clinic": "/catalogue?q=clinic",
        "http://127.0.0.1//evil.example/x": "/",
        "http://127.0.0.1/\\evil.example": "/",
        "http://evil.example/catalogue": "/",
    }
    for referer, back in cases.items():
        answer = client.get("/lang/en", headers={"referer": referer}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == back, referer
