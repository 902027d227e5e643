"""Rewrites: each ``rewrite(expr, ctx) -> (tree, findings)`` returns the rewritten tree,
which may be ``expr`` changed in place: the guard reads only the tree returned.

Findings with ``action="rewrite"`` record what was changed; a finding with
``action="block"`` means the query cannot be made safe. Every rewrite is
idempotent, so re-checking the rewritten query reaches the same SQL.
"""

from query_guard.rewrites import aggregate_safety, error_safety, row_cap

#: Aggregate mode's protection of values is not a rewrite of the query's text but a
#: compilation of its checked tree (:mod:`query_guard.anonymise`), after these.
REWRITES = (error_safety, aggregate_safety, row_cap)

__all__ = ["REWRITES"]
