"""The register of rules (``sandbox.refusal_catalogue.RULES``) against the source.

The source is read as syntax trees (``tests/rules/raise_sites.py``): every rule id a
refusal is raised with must be in the register with the articles it is raised with and
the modules that raise it, spelled as a literal or a constant (never built), and every
refusal whose message is written where it is raised must read in Chinese.
"""

from __future__ import annotations

import re
from collections import defaultdict

from sandbox.refusal_catalogue import ENTRIES, RULES, Rule
from sandbox.refusal_text import say
from tests.rules.raise_sites import DYNAMIC, Site, form_rules, guard_rule_bindings, sites

#: Sites that pass on a rule id another refusal already carries (their ids are found
#: where that refusal is made): (module, function) -> where the id comes from.
RELAYS = {
    ("sandbox.accounts.backoff", "refusal"): "its Backoff record (ACCOUNT, ADDRESS)",
    ("sandbox.cli.guard", "run"): "the engine's refusal, reported as a finding",
    ("sandbox.input_limits", "input_refusal"): "the first invalid field's (_RULES, ctx rule)",
    ("sandbox.oversight.workflow", "check"): "its Workflow record's transition/answer rule",
    ("query_guard.client", "_refusal"): "the query service's answer",
    ("query_guard.client", "export"): "the query service's answer",
    ("export_review.dp_export", "guard_scope"): "the guard's first blocking finding",
}
#: Rules of the catalogue's texts that are not refusals' ids: parts of messages, and
#: texts that serve every rule.
TEXT_ONLY = {"phrase", "*"}


def _register() -> dict[str, Rule]:
    """What the register should say, read from the source."""
    articles: dict[str, set[str]] = defaultdict(set)
    modules: dict[str, set[str]] = defaultdict(set)
    for site in sites():
        if site.rule != DYNAMIC:
            modules[site.rule].add(site.module)
            articles[site.rule].update([site.article] if site.article else [])
    return {r: Rule(tuple(sorted(articles[r])), tuple(sorted(modules[r]))) for r in modules}


def _where(found: list[Site]) -> str:
    return "; ".join(f"{s.module}:{s.line} {s.rule}" for s in found)


def test_the_reader_finds_refusals_however_their_id_is_spelled() -> None:
    """A literal, a module constant, an imported constant, a helper's parameter (through
    two helpers) or its default, a table a function picks from, a refusal body written by
    hand, a record holding rule ids; and the article a helper adds itself."""
    found = {(s.module, s.rule) for s in sites()}
    assert {
        ("query_guard.rules.relations", "QG-004"),  # RULE = "QG-004"
        ("query_guard.service.queries", "QG-014"),  # imported from the engine
        ("sandbox.identity.oidc", "oidc-expired"),  # refuse(rule, ...) from a table
        ("sandbox.backup.service", "backup-dataset-missing"),  # _recorded -> _existing
        ("sandbox.tls.web", "tls-required"),  # {"error": ..., "rule": rule}
        ("sandbox.oversight.tipoffs", "tipoff-transition"),  # a Workflow record
        ("sandbox.accounts.backoff", "sign-in-backoff-account"),  # a Backoff record
        ("sandbox.http.deps", "auth"),  # a keyword argument
        ("export_review.dp_plan", "dp-unsupported"),  # a helper's default: _refuse(message)
    } <= found
    cited = {(s.rule, s.article) for s in sites()}
    assert ("dp-out-of-scope", "agreement clause privacy") in cited  # the helper's own article


def test_every_raised_rule_id_is_in_the_register() -> None:
    missing = [s for s in sites() if s.rule != DYNAMIC and s.rule not in RULES]
    assert not missing, (
        "add these rules to RULES in sandbox/refusal_catalogue.py (articles, modules) "
        f"and their texts to ENTRIES: {_where(missing)}"
    )


def test_rule_ids_are_spelled_not_built() -> None:
    """An id made by an f-string or a concatenation cannot be found in the register or
    searched for in the code; an id the reader cannot follow must come from a relay."""
    built = [s for s in sites() if s.dynamic]
    assert not built, f"spell these rule ids out: {_where(built)}"
    unknown = [s for s in sites() if s.rule == DYNAMIC and (s.module, s.function) not in RELAYS]
    assert not unknown, f"the reader cannot tell these sites' rule ids: {_where(unknown)}"


def test_the_register_says_what_the_code_does() -> None:
    """Each entry's articles and modules are those the code raises it with, and no entry
    is left over from a rule the code no longer raises."""
    expected = _register()
    wrong = {r: (RULES.get(r), rule) for r, rule in expected.items() if RULES.get(r) != rule}
    lines = [f"{r}: register {a}, code {b}" for r, (a, b) in wrong.items()]
    assert not wrong, "set these in RULES (sandbox/refusal_catalogue.py), then run " + (
        "`sandbox rules render`:\n" + "\n".join(lines)
    )
    assert set(RULES) - set(expected) == set(), "rules no code raises any more"


def test_a_guard_rule_id_is_defined_once() -> None:
    """``QG-014`` was bound in the engine and again in the query service."""
    bound = guard_rule_bindings()
    assert len(bound) > 20
    twice = {rule: where for rule, where in bound.items() if len(where) > 1}
    assert not twice, twice


def test_every_text_belongs_to_a_registered_rule() -> None:
    stale = sorted({e[0] for e in ENTRIES} - set(RULES) - TEXT_ONLY)
    assert not stale, f"texts of rules no code raises: {stale}"


def _sample(template: str) -> str:
    return re.sub(r"\{\w+\}", "x1", template)


def test_every_refusal_reads_in_chinese() -> None:
    """Each message written where it is raised (an f-string's fields filled in) has a
    catalogue entry, so a Chinese page shows it in Chinese, rule and article kept."""
    written = {(s.rule, s.message) for s in sites() if s.message and s.rule != DYNAMIC}
    assert len(written) > 300
    untranslated = sorted(m for m in written if say(m[0], _sample(m[1]), "zh") is None)
    assert not untranslated, (
        "add (rule, English template, Chinese) to ENTRIES in sandbox/refusal_catalogue.py, "
        "then run `sandbox rules render`:\n" + "\n".join(f"{r}: {m}" for r, m in untranslated)
    )


def test_forms_name_rules_that_are_raised() -> None:
    """A form shown again with its refusal names the rules it shows (``shows_again``);
    a name no refusal carries never matches (the sign-in form named ``rate-limit``)."""
    named = form_rules()
    assert len(named) > 20
    unknown = [(m, rule) for m, rule in named if rule not in RULES and rule not in TEXT_ONLY]
    assert not unknown, unknown
