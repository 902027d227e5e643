"""The role guides (issue 13, item 4): each exists in Chinese and English and documents only
what exists (commands, pages, settings); /guide serves them; every page links to the guide;
the application form and the agreement page show the workspace's limits."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import typer.main
from fastapi.testclient import TestClient

from hub_config.kubernetes import KubernetesSettings
from hub_config.settings import HubSettings
from sandbox.accounts.models import User
from sandbox.cli.main import app as cli_app
from sandbox.provisioning.swarm import SwarmSettings
from sandbox.settings import Settings
from sandbox.web import pages as pages_package
from sandbox.web.i18n import LANGUAGES
from sandbox.web.pages.guide import DOCS_DIR, GUIDES
from tests.web.conftest import EXPORT_AGREEMENT
from tests.web.test_pages import sign_in

ROLES = {"alice": "researcher", "health": "provider", "ops": "operator", "auth": "authority"}
#: Paths the guides name that the platform app does not serve (the hub serves its own).
ELSEWHERE = {"/hub/metrics"}
#: Where a path names a file or folder on the host, not a page (``/var/lib/docker``).
HOST_PATHS = ("/etc/", "/var/", "/dev/", "/run/", "/usr/", "/mnt", "/tmp")


def _guides() -> list[Path]:
    return [DOCS_DIR / lang / f"{role}.md" for role in GUIDES for lang in LANGUAGES]


def test_each_guide_exists_in_chinese_and_english() -> None:
    for path in _guides():
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# ") and len(text) > 1000, path
        has_chinese = re.search(r"[\u4e00-\u9fff]{20}", text) is not None
        assert has_chinese == (path.parent.name == "zh"), path
    zh, en = DOCS_DIR / "zh", DOCS_DIR / "en"
    for role in GUIDES:  # the two languages cover the same sections
        count = [len(re.findall(r"^## ", (d / f"{role}.md").read_text(), re.M)) for d in (zh, en)]
        assert count[0] == count[1], role


def _commands(text: str) -> set[tuple[str, ...]]:
    """``sandbox CMD [SUB]`` as the guides write them, ``a|b`` meaning each of a and b."""
    found = set()
    for cmd, sub in re.findall(r"\bsandbox ([a-z][a-z-]*)(?: ([a-z][a-z|-]*))?", text):
        for one in sub.split("|") if sub else [""]:
            found.add((cmd, one) if one else (cmd,))
    return found


def test_every_command_the_guides_name_exists() -> None:
    group = typer.main.get_command(cli_app)
    named = set().union(*(_commands(p.read_text(encoding="utf-8")) for p in _guides()))
    assert ("backup",) in named and ("audit", "verify") in named
    for name in named:
        command = group.commands.get(name[0])  # type: ignore[attr-defined]
        assert command is not None, f"sandbox {name[0]} does not exist"
        subcommands = getattr(command, "commands", None)
        if subcommands is not None and len(name) == 2:
            assert name[1] in subcommands, f"sandbox {' '.join(name)} does not exist"


def _is_route(client: TestClient, url: str) -> bool:
    """Whether the app has a route for ``url`` (its own refusals, a 404 naming a rule
    included, are answers; only the router's bare 404 says there is no such route)."""
    answer = client.get(url, follow_redirects=False)
    return not (answer.status_code == 404 and answer.text == '{"detail":"Not Found"}')


def test_every_page_and_setting_the_guides_name_exists(client: TestClient) -> None:
    assert not _is_route(client, "/no-such-page")
    settings = {f"SANDBOX_{f.upper()}" for f in Settings.model_fields}
    settings |= {f"SANDBOX_HUB_{f.upper()}" for f in HubSettings.model_fields}
    settings |= {f"SANDBOX_HUB_K8S_{f.upper()}" for f in KubernetesSettings.model_fields}
    settings |= {f"SANDBOX_HUB_SWARM_{f.upper()}" for f in SwarmSettings.model_fields}
    for path in _guides():
        text = path.read_text(encoding="utf-8")
        for url in re.findall(r"`(/[a-z][^`\s]*)`", text):
            if url not in ELSEWHERE and "…" not in url and not url.startswith(HOST_PATHS):
                assert _is_route(client, url.split("?")[0]), f"{path}: no page {url}"
        for name in re.findall(r"\bSANDBOX_[A-Z_]*[A-Z]\b", text):
            assert name in settings, f"{path}: no setting {name}"


def test_the_guide_route_serves_each_guide_in_both_languages(client: TestClient) -> None:
    for role in GUIDES:
        for lang in LANGUAGES:
            title = (DOCS_DIR / lang / f"{role}.md").read_text(encoding="utf-8").splitlines()[0]
            page = client.get(f"/guide/{role}?lang={lang}")
            assert page.status_code == 200
            assert f"<h1>{title.removeprefix('# ')}</h1>" in page.text
            assert "<table>" in page.text or "<pre>" in page.text  # rendered, not raw Markdown
            other = "en" if lang == "zh" else "zh"
            assert f'href="/guide/{role}?lang={other}"' in page.text
    assert client.get("/guide/researcher.md").status_code == 200  # links between the files
    index = client.get("/guide")
    assert index.status_code == 200
    assert all(f'href="/guide/{role}"' in index.text for role in GUIDES)
    missing = client.get("/guide/nobody")
    assert missing.status_code == 404 and "guide-unknown" in missing.text


def _pages() -> list[str]:
    """Every page without path parameters (the others need objects of their own)."""
    found = set()
    for module in pkgutil.iter_modules(pages_package.__path__):
        router = importlib.import_module(f"{pages_package.__name__}.{module.name}").router
        found |= {r.path for r in router.routes if "GET" in r.methods and "{" not in r.path}
    return sorted(found)


def test_every_page_links_to_the_guide(client: TestClient, platform: dict[str, User]) -> None:
    pages = _pages()
    assert {"/", "/catalogue", "/researcher", "/provider", "/operator", "/authority"} <= set(pages)
    checked = 0
    for username in [None, *ROLES]:
        client.cookies.clear()
        expected = 'href="/guide"'
        if username is not None:
            sign_in(client, username)
            expected = f'href="/guide/{ROLES[username]}"'
        for path in pages:
            page = client.get(path)
            if page.headers.get("content-type", "").startswith("text/html"):
                assert expected in page.text and 'id="menu-guide"' in page.text, (username, path)
                checked += 1
    assert checked >= 5 * 20


def test_the_application_form_and_the_agreement_show_the_workspace_limits(
    client: TestClient, export_agreement: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_HUB_MEMORY", "3g")
    monkeypatch.setenv("SANDBOX_HUB_IDLE_TIMEOUT", "1800")
    sign_in(client, "alice")
    for path in ("/researcher/applications/new", f"/researcher/agreements/{EXPORT_AGREEMENT}"):
        page = client.get(path)
        assert page.status_code == 200 and 'id="workspace-limits"' in page.text
        for shown in (
            "内存 3g",
            "CPU 1 核",
            "进程数 512",
            "临时目录 /tmp 256m",
            "空闲 30 分钟",
            "30 秒",
        ):
            assert shown in page.text, (path, shown)
    client.get("/lang/en")
    page = client.get(f"/researcher/agreements/{EXPORT_AGREEMENT}")
    assert "memory 3g" in page.text and "stopped after 30 minutes idle" in page.text
