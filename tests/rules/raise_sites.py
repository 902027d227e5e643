"""Every place the source raises a refusal, found by reading its syntax tree.

A refusal is a ``SandboxError`` (or the notebook client's ``QueryRefused``) built with a
rule id, a guard ``Finding``, or a record that holds a rule id for later (``Backoff``,
``Workflow``); a function that passes one of its parameters on as the rule id
(``refuse(rule, message)``) makes its callers raise sites too. Ids and articles are
resolved through module constants, imported ones included, and a function's own local
names, so a refusal is found however its id is spelled. Regular expressions would miss
the half of these that name their rule through a constant or a helper.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sandbox", "query_guard", "export_review", "hub_config")
#: A rule id's shape, for the ids a function picks from a table of its own.
RULE_ID = re.compile(r"QG-\d{3}|[a-z][a-z0-9]*(-[a-z0-9]+)+")
#: A rule named in a message's text: ``(rule tls-pair)``.
_NAMED_IN_TEXT = re.compile(r"\(rule ([a-z][a-z0-9]*(?:-[a-z0-9]+)+)\)")
#: A rule id the source computes rather than spells.
DYNAMIC = "<dynamic>"

Function = ast.FunctionDef | ast.AsyncFunctionDef
#: Where a callable takes a value: its position (``None``: keyword only) and keyword.
Slot = tuple[int | None, str]
_NOWHERE: Slot = (None, "-")


@dataclass(frozen=True)
class Site:
    """One refusal in the source: where, its rule id, its article and its message.

    ``message`` is a template: an f-string's fields become ``{name}`` placeholders;
    ``None`` when the message is not written at the site. ``dynamic`` is true when the
    id itself is an f-string or a concatenation.
    """

    module: str
    function: str
    line: int
    rule: str
    article: str | None
    message: str | None
    dynamic: bool = False


@dataclass(frozen=True)
class _Signature:
    """Where a callable takes the rule, the article and the message of a refusal; a
    helper's own article (one it does not take) and its rule parameter's default."""

    rule: Slot
    article: Slot = _NOWHERE
    message: Slot = _NOWHERE
    own_article: str | None = None
    rule_default: str | None = None


_ERROR = _Signature((None, "rule"), (None, "article"), (0, "message"))
_POLICY = _Signature((0, "rule_id"), (1, "article"), (2, "message"))
#: Records that hold rule ids, and where they take them.
_RECORDS: dict[str, tuple[_Signature, ...]] = {
    "Finding": (_Signature((0, "rule"), (2, "article"), (1, "message")),),
    "Backoff": (_Signature((0, "rule")),),
    "Workflow": (
        _Signature((None, "transition_rule"), (1, "article")),
        _Signature((None, "answer_rule"), (1, "article")),
    ),
}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


@cache
def _trees() -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


@cache
def _constants() -> dict[str, dict[str, ast.expr]]:
    """Module -> upper-case name -> the expression the module binds it to."""
    found: dict[str, dict[str, ast.expr]] = {}
    for module, tree in _trees().items():
        names = found.setdefault(module, {})
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id.isupper():
                names.setdefault(target.id, value)
    return found


@cache
def _imports(module: str) -> dict[str, tuple[str, str]]:
    """Names a module imports: local name -> (module, name)."""
    found = {}
    for node in ast.walk(_trees()[module]):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def _constant(module: str, name: str) -> tuple[str, ast.expr] | None:
    """The module and expression a constant is bound to, following imports."""
    if name in _constants().get(module, {}):
        return module, _constants()[module][name]
    source, original = _imports(module).get(name, ("", ""))
    if original in _constants().get(source, {}):
        return _constant(source, original)
    return None


def _field(node: ast.expr) -> str:
    """A placeholder's name for an f-string field."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _field(node.args[0] if node.args else node.func)
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.Subscript):
        return _field(node.value)
    return "value"


def _clause(node: ast.expr) -> str | None:
    """An agreement's clause as the guard cites it: ``ctx.clause("datasets")`` is
    ``agreement {id} datasets``."""
    if not isinstance(node, ast.Call) or getattr(node.func, "attr", None) != "clause":
        return None
    path = node.args[0] if node.args else None
    return f"agreement {{id}} {path.value}" if isinstance(path, ast.Constant) else None


def _text(node: ast.expr, module: str, depth: int = 0) -> str | None:
    """A string expression as text, an f-string's fields as ``{name}`` placeholders (a
    constant's value where a field names one); ``None`` when it is not text."""
    if depth > 8:
        return None
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                inner = value.value
                known = _text(inner, module, depth + 1) if isinstance(inner, ast.Name) else None
                parts.append(known or _clause(inner) or "{" + _field(inner) + "}")
            else:
                parts.append(str(getattr(value, "value", "")))
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, module, depth + 1), _text(node.right, module, depth + 1)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Name | ast.Attribute):
        bound = _constant(module, node.id if isinstance(node, ast.Name) else node.attr)
        if bound is not None:
            return _text(bound[1], bound[0], depth + 1)
    return _clause(node)


def _argument(call: ast.Call, slot: Slot) -> ast.expr | None:
    position, keyword = slot
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if position is not None and position < len(call.args):
        arg = call.args[position]
        return None if isinstance(arg, ast.Starred) else arg
    return None


@cache
def _error_classes() -> dict[str, tuple[_Signature, str | None, str | None]]:
    """Error class name -> (signature, its class-level rule, its class-level article)."""
    classes: dict[str, tuple[_Signature, str | None, str | None]] = {
        "SandboxError": (_ERROR, "error", None),
        "QueryRefused": (_ERROR, None, None),
    }
    changed = True
    while changed:
        changed = False
        for module, tree in _trees().items():
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef) or node.name in classes:
                    continue
                bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                parent = next((classes[b] for b in bases if b in classes), None)
                if parent is None:
                    continue
                signature, rule, article = parent
                if node.name == "PolicyViolation":
                    signature = _POLICY
                for item in node.body:
                    if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name):
                        if item.targets[0].id == "rule":
                            rule = _text(item.value, module)
                        elif item.targets[0].id == "article":
                            article = _text(item.value, module)
                classes[node.name] = (signature, rule, article)
                changed = True
    return classes


def _parameters(func: Function) -> list[str]:
    """Positional parameters first (their index is their position), then keyword-only."""
    args = func.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


def _slot(func: Function, node: ast.expr | None) -> Slot:
    """Where ``func`` takes the parameter ``node`` names."""
    params = _parameters(func)
    if not isinstance(node, ast.Name) or node.id not in params:
        return _NOWHERE
    index = params.index(node.id)
    if index >= len(params) - len(func.args.kwonlyargs):
        return None, node.id
    return index - (1 if params[0] in ("self", "cls") else 0), node.id


def _default(module: str, func: Function, name: str) -> str | None:
    """The text a parameter of ``func`` defaults to, if any."""
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    defaults = dict(zip([a.arg for a in positional][::-1], args.defaults[::-1], strict=False))
    defaults.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d)
    return _text(defaults[name], module) if name in defaults else None


def _passes_on(module: str, func: Function, node: ast.AST, known: dict) -> Iterator[_Signature]:
    """How ``func`` passes a parameter on as a rule id at ``node``: to a refusal it
    builds, or into a refusal's body it writes (``{"error": message, "rule": rule}``)."""
    params = _parameters(func)
    if isinstance(node, ast.Call) and func.name != "__init__":
        for signature in _signatures(node, module, known):
            rule = _argument(node, signature.rule)
            if isinstance(rule, ast.Name) and rule.id in params:
                article = _argument(node, signature.article)
                own = _text(article, module) if article is not None else signature.own_article
                yield _Signature(
                    _slot(func, rule),
                    _slot(func, article),
                    _slot(func, _argument(node, signature.message)),
                    None if _slot(func, article) != _NOWHERE else own,
                    _default(module, func, rule.id) or signature.rule_default,
                )
    if isinstance(node, ast.Dict):
        keys = {
            k.value: v
            for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(k, ast.Constant) and isinstance(v, ast.Name) and v.id in params
        }
        if "rule" in keys:
            yield _Signature(
                _slot(func, keys["rule"]),
                _slot(func, keys.get("article")),
                _slot(func, keys.get("error")),
            )


@cache
def _forwarders() -> dict[tuple[str, str], tuple[_Signature, ...]]:
    """(module, function) -> where it takes the rule ids it passes on to a refusal."""
    found: dict[tuple[str, str], tuple[_Signature, ...]] = {}
    changed = True
    while changed:
        changed = False
        for module, tree in _trees().items():
            for func in ast.walk(tree):
                if not isinstance(func, Function):
                    continue
                before = found.get((module, func.name), ())
                new = [s for n in ast.walk(func) for s in _passes_on(module, func, n, found)]
                signatures = tuple(dict.fromkeys((*before, *new)))
                if signatures != before:  # grows only, so the loop ends
                    found[(module, func.name)] = signatures
                    changed = True
    return found


def _signatures(call: ast.Call, module: str, forwarders: dict) -> tuple[_Signature, ...]:
    """Where ``call`` takes rule ids, if it builds a refusal or a rule record."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name in _RECORDS:
        return _RECORDS[name]
    if name in _error_classes():
        return (_error_classes()[name][0],)
    if (module, name) in forwarders:
        return forwarders[(module, name)]
    return forwarders.get(_imports(module).get(name or "", ("", "")), ())


@dataclass(frozen=True)
class _Scope:
    """The function around a call: its parameters (outer ones included) and itself."""

    params: frozenset[str]
    function: Function | None


def _scopes(tree: ast.Module) -> dict[ast.Call, _Scope]:
    scopes: dict[ast.Call, _Scope] = {}

    def visit(node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, Function):
            scope = _Scope(scope.params | set(_parameters(node)), node)
        if isinstance(node, ast.Call):
            scopes[node] = scope
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, _Scope(frozenset(), None))
    return scopes


def _local_values(name: str, function: Function) -> list[ast.expr] | None:
    """What a function binds ``name`` to: plain assignments and unpacked tuples; ``None``
    when it is bound any other way (a loop, a comprehension, a call's result)."""
    values: list[ast.expr] = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                values.append(node.value)
            elif isinstance(target, ast.Tuple):
                names = [t.id if isinstance(t, ast.Name) else None for t in target.elts]
                if name not in names:
                    continue
                source = node.value
                for branch in (
                    (source.body, source.orelse) if isinstance(source, ast.IfExp) else (source,)
                ):
                    if not isinstance(branch, ast.Tuple):
                        return None
                    values.append(branch.elts[names.index(name)])
    return values or None


def _table_ids(function: Function) -> list[str]:
    """The rule ids a function picks from a table of its own: the rule-id-shaped strings
    in the tuples it writes (``(jwt.ExpiredSignatureError, "oidc-expired", "...")``)."""
    return [
        item.value
        for node in ast.walk(function)
        if isinstance(node, ast.Tuple)
        for item in node.elts
        if isinstance(item, ast.Constant)
        and isinstance(item.value, str)
        and RULE_ID.fullmatch(item.value)
    ]


def _values(
    node: ast.expr, module: str, scope: _Scope, *, table: bool = False
) -> Iterator[tuple[str | None, bool]]:
    """The texts an expression can hold (``None``: not known), each with whether it is
    computed; with ``table``, a local name picked from a table yields the table's ids."""
    if isinstance(node, ast.IfExp):
        yield from _values(node.body, module, scope, table=table)
        yield from _values(node.orelse, module, scope, table=table)
        return
    local = isinstance(node, ast.Name) and _constant(module, node.id) is None
    if local and scope.function is not None:
        assert isinstance(node, ast.Name)
        bound = _local_values(node.id, scope.function)
        if bound is not None:
            for value in bound:
                yield from _values(value, module, scope, table=table)
            return
        if table and (ids := _table_ids(scope.function)):
            yield from ((rule, False) for rule in ids)
            return
    yield _text(node, module), isinstance(node, ast.JoinedStr | ast.BinOp)


def _call_sites(module: str, tree: ast.Module, forwarders: dict) -> Iterator[Site]:
    classes = _error_classes()
    for call, scope in _scopes(tree).items():
        name = scope.function.name if scope.function else "<module>"
        callee = getattr(call.func, "id", getattr(call.func, "attr", ""))
        _, default_rule, default_article = classes.get(callee, (None, None, None))
        for signature in _signatures(call, module, forwarders):
            rule = _argument(call, signature.rule)
            if isinstance(rule, ast.Name) and rule.id in scope.params:
                continue  # a helper passing its parameter on: its callers are the sites
            article_node = _argument(call, signature.article)
            articles = [signature.own_article or default_article]
            if article_node is not None:
                articles = list(dict.fromkeys(a for a, _ in _values(article_node, module, scope)))
            message_node = _argument(call, signature.message)
            message = next(_values(message_node, module, scope))[0] if message_node else None
            rules = [(signature.rule_default or default_rule, False)]
            if rule is not None:
                rules = [
                    (r if r is not None else DYNAMIC, d)
                    for r, d in _values(rule, module, scope, table=True)
                ]
            for value, dynamic in rules:
                for article in articles:
                    if value:  # no rule, no refusal: ``refusal(problem) if problem else None``
                        yield Site(module, name, call.lineno, value, article, message, dynamic)


def _data_sites(module: str, tree: ast.Module) -> Iterator[Site]:
    """Rules named in data: a rule a class other than an error declares (an error's own
    counts where it is raised without one), a ``{"rule": ...}`` context, the values of a
    ``_RULES`` table (``sandbox.input_limits``: error type -> rule), and a message that
    names its rule in its text, as configuration refusals do (``(rule tls-pair)``)."""
    classes = _error_classes()
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | Function)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if node.name in classes or not isinstance(item, ast.Assign):
                    continue
                target, rule = item.targets[0], _text(item.value, module)
                if isinstance(target, ast.Name) and target.id == "rule" and rule:
                    yield Site(module, node.name, item.lineno, rule, None, None)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            for named in _NAMED_IN_TEXT.findall(node.value):
                yield Site(module, "<text>", node.lineno, named, None, None)
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                text = _text(value, module)
                if isinstance(key, ast.Constant) and key.value == "rule" and text:
                    yield Site(module, "<data>", node.lineno, text, None, None)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id == "_RULES":
                for value in node.value.values:
                    if text := _text(value, module):
                        yield Site(module, target.id, value.lineno, text, None, None)


@cache
def sites() -> tuple[Site, ...]:
    """Every refusal the source raises, in module and line order."""
    forwarders = _forwarders()
    return tuple(
        site
        for module, tree in _trees().items()
        for site in (*_call_sites(module, tree, forwarders), *_data_sites(module, tree))
    )


def guard_rule_bindings() -> dict[str, list[str]]:
    """Each guard rule id (``QG-xxx``) -> the module constants bound to it."""
    bound: dict[str, list[str]] = {}
    for module, names in _constants().items():
        for name, value in names.items():
            if isinstance(value, ast.Constant) and re.fullmatch(r"QG-\d{3}", str(value.value)):
                bound.setdefault(value.value, []).append(f"{module}.{name}")
    return bound


def form_rules() -> list[tuple[str, str]]:
    """(module, rule) for each rule a form shown again names (``shows_again(rules=...)``)."""
    named = []
    for module, tree in _trees().items():
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "shows_again":
                rules = next((k.value for k in call.keywords if k.arg == "rules"), None)
                if isinstance(rules, ast.Dict):
                    named += [(module, k.value) for k in rules.keys if isinstance(k, ast.Constant)]
    return named
