"""The query blocks of the tree being checked, built once for every rule.

Each rule walks the tree's scopes, and sqlglot builds them anew on every call:
eight rules and the allowlist building them again and again cost the guard a
fifth of its decision. While :func:`sharing` holds a tree, :func:`scopes` of it
returns one list, whose scopes also keep what they collected. The rules are
pure, so the tree does not change under them; the rewrites that follow do, and
build their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard import lineage

_SHARED: ContextVar[tuple[exp.Expression, list[Scope]] | None] = ContextVar(
    "query_guard_shared_scopes", default=None
)


def scopes(tree: exp.Expression) -> list[Scope]:
    """Every query block of ``tree``, innermost first (:func:`query_guard.lineage.scopes`)."""
    shared = _SHARED.get()
    if shared is not None and shared[0] is tree:
        return shared[1]
    return lineage.scopes(tree)


def select_scopes(tree: exp.Expression) -> Iterator[Scope]:
    return (s for s in scopes(tree) if isinstance(s.expression, exp.Select))


@contextmanager
def sharing(tree: exp.Expression) -> Iterator[None]:
    """Let every :func:`scopes` of ``tree`` in this block return the same scopes."""
    token = _SHARED.set((tree, lineage.scopes(tree)))
    try:
        yield
    finally:
        _SHARED.reset(token)
