"""A refusal in the reader's language: its text by rule id, its article as the regulation's name.

The services refuse in English (the API, the CLI and the audit record keep that text).
Where a person reads a refusal (the pages, the notebook client) its Chinese text comes
from ``sandbox.refusal_catalogue``: entries keyed by rule id, each an English template
whose ``{placeholders}`` are the message's parameters, and the Chinese text they go into.
The rule id and the article are never translated away: the article is rewritten as the
regulation's Chinese name and article, the rule id is shown as it is.

Only the standard library: the notebook client imports this in the workspace.

>>> say("role", "this action needs the role operator; you are signed in as researcher", "zh")
'此操作需要平台运营角色；您当前的角色是数据利用主体'
>>> say_article("Shanghai Art.28(4); Wuxi Art.11-12", "zh")
'上海条例第28条第(4)项；无锡办法第11–12条'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from sandbox.refusal_catalogue import ENTRIES, ROLES, VALUES

LANGUAGES = ("zh", "en")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_REGULATIONS = {"Shanghai": "上海条例", "Wuxi": "无锡办法", "Rizhao": "日照办法",
                "Putuo": "普陀办法", "Measures": "办法"}  # fmt: skip
_SEGMENT = r"Art\.[0-9()\-–, ]*[0-9)]"
_ARTICLE = re.compile(rf"\b({'|'.join(_REGULATIONS)}) ({_SEGMENT}(?:,\s*{_SEGMENT})*)")
_AGREEMENT_CLAUSE = re.compile(r"\bagreement (?!clause )(\S+) (?=\S)")
#: Words some citations add to an article or a clause, in Chinese.
_GLOSSES = {"the provider's preview budget for the dataset": "开放主体为该数据集设定的预览预算",
            " (figure)": "（图表）"}  # fmt: skip
_PARTS = re.compile(r"(\d+(?:\s*[-–,]\s*\d+)*)((?:\(\d+\)(?:\s*[-–]\s*\(\d+\))?)*)")


def _value(text: str) -> str:
    return VALUES.get(text, text)


def _roles(text: str) -> str:
    return "、".join(ROLES.get(r.strip(), r.strip()) for r in text.split(","))


def _phrases(text: str, separator: str = "; ") -> str:
    """``phrase`` entries joined as Chinese joins them: "；" for clauses, "、" for items."""
    joiner = "；" if separator == "; " else "、"
    return joiner.join(say("phrase", part, "zh") or part for part in text.split(separator))


#: How a parameter is shown in Chinese, chosen by its name in the Chinese template.
_CONVERTERS: dict[str, Callable[[str], str]] = {
    "value": _value, "roles": _roles, "phrases": _phrases,
    "values": lambda text: "、".join(_value(part) for part in text.split(", ")),
    "items": lambda text: _phrases(text, ", "),
    "or": lambda text: text.replace(" or ", " 或 "),
    "phrase": lambda text: say("phrase", text, "zh") or text,
}  # fmt: skip


class _Parameter(str):
    """A message's parameter; ``{name:roles}`` in a Chinese template converts it."""

    def __format__(self, spec: str) -> str:
        return _CONVERTERS[spec](str(self)) if spec else str(self)


@cache
def _compiled() -> dict[str, list[tuple[re.Pattern[str], str, str | None]]]:
    by_rule: dict[str, list[tuple[re.Pattern[str], str, str | None]]] = {}
    for rule, english, chinese, *better_english in ENTRIES:
        parts = _PLACEHOLDER.split(english)
        pattern = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        )
        english_text = better_english[0] if better_english else None
        entry = (re.compile(pattern, re.DOTALL), chinese, english_text)
        by_rule.setdefault(rule, []).append(entry)
    return by_rule


def say(rule: str, message: str, lang: str) -> str | None:
    """The refusal's text in ``lang``, or ``None`` when the catalogue has no entry for it
    (the caller then shows the English text and marks it as English). Entries of rule
    ``*`` serve every rule (e.g. a request's invalid fields, whatever field came first)."""
    entries = _compiled()
    for pattern, chinese, english in (*entries.get(rule, ()), *entries.get("*", ())):
        found = pattern.fullmatch(message)
        if found:
            if lang != "zh":
                return english.format_map(found.groupdict()) if english else message
            return chinese.format_map({k: _Parameter(v) for k, v in found.groupdict().items()})
    return None if lang == "zh" else message


def say_article(article: str, lang: str) -> str:
    """An article citation in ``lang``: ``Shanghai Art.28(4)`` is 上海条例第28条第(4)项."""
    if lang != "zh":
        return article

    def segment(text: str) -> str:
        found = _PARTS.fullmatch(text.strip())
        if not found:
            return text
        numbers, items = (re.sub(r"\s*[-–]\s*", "–", g) for g in found.groups())
        listed = re.sub(r"\s*,\s*", "、", numbers)
        return f"第{listed}条" + (f"第{items}项" if items else "")

    def chinese(found: re.Match[str]) -> str:
        place, refs = found.groups()
        return _REGULATIONS[place] + "、".join(
            segment(part) for part in re.split(r",\s*Art\.", refs.removeprefix("Art."))
        )

    text = _AGREEMENT_CLAUSE.sub(r"协议 \1 条款 ", _ARTICLE.sub(chinese, article))
    for english, glossed in _GLOSSES.items():
        text = text.replace(english, glossed)
    return text.replace("agreement clause ", "协议条款 ").replace("; ", "；")
