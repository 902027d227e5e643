"""Every rule in the register has a test that triggers it.

Criterion: a rule counts as triggered when a test outside ``tests/rules`` names its id —
in a Python string (``assert exc.value.rule == "dp-epsilon"``, ``match="QG-004"``) or in
a fixture file (``# expect: block QG-004``). A test that provokes a refusal says which
rule it expects, so an id no test names is one no test is known to provoke. Names are
read from the syntax tree's strings, so a comment does not count.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sandbox.refusal_catalogue import RULES

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = (".sql", ".yaml", ".yml", ".json", ".txt")
_TOKEN = re.compile(r"QG-\d{3}|[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*")

#: Debt: rules no test names yet. Each one is a refusal nobody has watched happen; write
#: the test that provokes it (and asserts its rule), then take the id off this list.
UNTESTED = frozenset({
    "QG-000", "QG-012", "QG-017", "audit-database", "backup-dataset-changed",
    "backup-export-missing", "backup-io", "backup-release-key", "backup-release-missing",
    "catalog-review-unpublished", "dataset-no-data", "dp-no-privacy-unit", "export-author",
    "export-bundle", "export-content", "export-dp-interrupted", "export-dp-source",
    "export-figure", "export-file", "export-file-name", "import-author", "import-file",
    "import-independent-reviewers", "oidc-issuer", "oidc-token", "publish-preview",
    "restore-dialect", "swarm-inactive", "tipoff-routing",
})  # fmt: skip


def _named_in_tests() -> set[str]:
    named: set[str] = set()
    for path in TESTS.rglob("*"):
        if path.parent == Path(__file__).parent or not path.is_file():
            continue
        if path.suffix == ".py":
            strings = [
                node.value
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
            ]
        elif path.suffix in FIXTURES:
            strings = [path.read_text(encoding="utf-8", errors="replace")]
        else:
            continue
        named.update(token for text in strings for token in _TOKEN.findall(text))
    return named


def test_every_rule_has_a_test_that_triggers_it() -> None:
    named = _named_in_tests()
    untested = sorted(set(RULES) - named - UNTESTED)
    assert not untested, f"no test names these rules: {untested}"
    paid = sorted(UNTESTED & named)
    assert not paid, f"a test names these now: take them off UNTESTED: {paid}"
    assert set(RULES) >= UNTESTED, sorted(UNTESTED - set(RULES))
