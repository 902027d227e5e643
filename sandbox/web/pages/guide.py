"""The role guides (``docs/<lang>/<role>.md``), served as pages under ``/guide``.

The Markdown files in the repository are the guides; this route only renders them, in the
page's language unless ``?lang=`` asks for the other, so there is one text to keep true.
Raw HTML in them is escaped, not passed through. Every page's menu links here
(``base.html``), to the guide of the signed-in user's role or, for the public, the list.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt

from sandbox.errors import NotFound
from sandbox.web.i18n import LANGUAGES, language
from sandbox.web.rendering import page_router, render

#: The repository's docs folder (the platform runs from its source tree).
DOCS_DIR = Path(__file__).resolve().parents[3] / "docs"
GUIDES = ("researcher", "provider", "operator", "authority")

router = page_router("/guide")
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def guide_path(role: str, lang: str) -> Path:
    return DOCS_DIR / lang / f"{role}.md"


def _title(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0] if path.is_file() else ""
    return first.lstrip("# ").strip() or path.stem


def _guides(lang: str) -> list[dict[str, str]]:
    return [{"role": r, "title": _title(guide_path(r, lang))} for r in GUIDES]


@router.get("")
def guides(request: Request) -> HTMLResponse:
    """The four guides, in the page's language."""
    return render(request, "guide.html", {"guides": _guides(language(request))})


@router.get("/{name}")
def guide(request: Request, name: str, lang: str = "") -> HTMLResponse:
    """One role's guide; ``researcher.md`` works as well as ``researcher``, so links
    between the Markdown files work both in the repository and here."""
    role = name.removesuffix(".md")
    shown = lang if lang in LANGUAGES else language(request)
    path = guide_path(role, shown)
    if role not in GUIDES or not path.is_file():
        raise NotFound(
            f"there is no guide {name!r}; the guides are: {', '.join(GUIDES)}",
            rule="guide-unknown",
        )
    other = next(code for code in LANGUAGES if code != shown)
    context = {
        "guides": _guides(shown),
        "role": role,
        "shown": shown,
        "other": other,
        "body": _markdown.render(path.read_text(encoding="utf-8")),
        "title": _title(path),
    }
    return render(request, "guide.html", context)
