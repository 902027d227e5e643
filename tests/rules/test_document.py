"""``docs/rules.md`` is the register rendered: up to date, every rule in it, both languages."""

from __future__ import annotations

import re
from pathlib import Path

from sandbox.refusal_catalogue import RULES
from sandbox.rule_register import DOCUMENT, markdown, rules, write


def test_the_committed_document_is_up_to_date() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == markdown(), "run `sandbox rules render`"


def test_every_rule_is_in_the_document_in_both_languages() -> None:
    text = markdown()
    assert all(f"## `{rule}`" in text for rule in RULES)
    assert "上海条例第28条" in text and "Shanghai Art.28" in text
    assert "表 {name} 不在协议范围内" in text and "relation {name} is not in the agreement" in text


def test_the_views_show_chinese_articles_and_texts_without_conversions() -> None:
    """``{status:value}`` is how a value is converted, not text to read."""
    views = {view.rule: view for view in rules("zh")}
    assert views["QG-005"].articles == ("上海条例第22条",)
    assert not [t for v in views.values() for t in v.texts if re.search(r"\{\w+:\w+\}", t)]
    shown = "协议 {id} 的状态为{status}；工作空间只在协议有效时运行"
    assert shown in views["agreement-not-active"].texts


def test_render_writes_once(tmp_path: Path) -> None:
    target = tmp_path / "rules.md"
    assert write(target) and not write(target)
    assert target.read_text(encoding="utf-8") == markdown()
