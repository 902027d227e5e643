"""The register of rules as a public page (``/rules``), in the page's language.

Whoever is refused can look the rule up by its id (``/rules#QG-004``): the articles it
cites, where the code raises it and what its refusals say. It is the register itself
(``sandbox.rule_register``), as ``docs/rules.md`` is, so the two cannot disagree.
"""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import HTMLResponse

from sandbox.rule_register import rules
from sandbox.web.i18n import language
from sandbox.web.rendering import page_router, render

router = page_router("/rules")

#: What a text shows as code: in Chinese every run of ASCII (SQL, settings, names, the
#: ``{value}`` placeholders), in English the placeholders only.
_CODE = {"zh": re.compile(r"([A-Za-z{(\-][!-~]*(?: [A-Z][!-~]*)*)"), "en": re.compile(r"(\{\w+\})")}


def _segments(text: str, lang: str) -> list[tuple[str, bool]]:
    """``text`` as (part, is code) pairs."""
    parts = _CODE[lang].split(text)
    return [(part, i % 2 == 1) for i, part in enumerate(parts) if part]


@router.get("")
def register(request: Request) -> HTMLResponse:
    """Every rule with its articles, modules and refusals' texts."""
    lang = language(request)
    shown = [
        {
            "rule": view.rule,
            "articles": [_segments(a, lang) for a in view.articles],
            "modules": view.modules,
            "texts": [_segments(t, lang) for t in view.texts],
        }
        for view in rules(lang)
    ]
    return render(request, "rules.html", {"rules": shown})
