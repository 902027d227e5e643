"""The register of rules as people read it: ``docs/rules.md`` and the page ``/rules``.

Everything here comes from ``sandbox.refusal_catalogue`` (``RULES`` and the texts of
``ENTRIES``) and is only arranged, so the document and the page cannot say what the
register does not; ``sandbox rules render`` writes the document, and a test fails when
the committed one is out of date.

>>> [view.texts for view in rules("zh") if view.rule == "csrf"]
[('表单缺少安全令牌或令牌已过期，请刷新页面后重新提交',)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sandbox.refusal_catalogue import ENTRIES, RULES
from sandbox.refusal_text import say_article

#: Where the document lives in the repository (the platform runs from its source tree).
DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
GUARD_PREFIX = "QG-"
#: A Chinese template's conversion (``{status:value}``) is how a value is shown, not text.
_CONVERSION = re.compile(r"\{(\w+):\w+\}")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_<>\[\]#|])")


@dataclass(frozen=True)
class RuleView:
    """One rule in one language: its articles, the modules raising it and its texts."""

    rule: str
    articles: tuple[str, ...]
    modules: tuple[str, ...]
    texts: tuple[str, ...]


def _texts(lang: str) -> dict[str, tuple[str, ...]]:
    """Each rule's refusal texts in ``lang``, placeholders as ``{name}``, each once."""
    found: dict[str, dict[str, None]] = {}
    for rule, english, chinese, *better_english in ENTRIES:
        text = chinese if lang == "zh" else (better_english or [english])[0]
        found.setdefault(rule, {})[_CONVERSION.sub(r"{\1}", text)] = None
    return {rule: tuple(texts) for rule, texts in found.items()}


def rules(lang: str) -> list[RuleView]:
    """The register in ``lang``: the guard's rules first, then the platform's, by id."""
    texts = _texts(lang)
    ordered = sorted(RULES, key=lambda r: (not r.startswith(GUARD_PREFIX), r))
    return [
        RuleView(
            rule,
            tuple(say_article(a, lang) for a in RULES[rule].articles),
            RULES[rule].modules,
            texts.get(rule, ()),
        )
        for rule in ordered
    ]


def _md(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown() -> str:
    """``docs/rules.md``: each rule with its articles and texts in Chinese, then English."""
    lines = [
        "# 规则登记表 · Register of rules",
        "",
        "本文件由 `sandbox rules render` 根据 `sandbox/refusal_catalogue.py` 生成，请勿手工修改。"
        "每条规则列出其依据的条款、引发拒绝的代码模块和拒绝说明（`{…}` 为具体取值）。",
        "",
        "Made by `sandbox rules render` from `sandbox/refusal_catalogue.py`; do not edit by "
        "hand. Each rule lists the articles it cites, the modules that raise it and its "
        "refusals' texts (`{…}` stands for a value).",
    ]
    for zh, en in zip(rules("zh"), rules("en"), strict=True):
        lines += ["", f"## `{zh.rule}`", ""]
        if zh.articles:
            lines.append(f"- 依据：{' · '.join(map(_md, zh.articles))}")
            lines.append(f"- Articles: {' · '.join(map(_md, en.articles))}")
        lines.append(f"- 代码 · Raised in: {', '.join(f'`{m}`' for m in zh.modules)}")
        lines += [f"- {_md(text)}" for text in zh.texts]
        lines += [f"- {_md(text)}" for text in en.texts]
    return "\n".join(lines) + "\n"


def write(path: Path = DOCUMENT) -> bool:
    """Write the document; whether it changed."""
    text = markdown()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True
