"""Aggregate mode's anonymisation: every value from enough contributors, none dominant,
with sticky layered noise (THREAT_MODEL: what the workspace cannot stop).

A query block that aggregates the datasets directly (an *anonymising block*)
is compiled into SQL that first sums each entity's contribution to every
base aggregate of every bucket (:mod:`.emit`), then, per bucket and base
aggregate, counts the entities that actually contribute (non-NULL, non-zero),
flattens the largest contributions and adds noise seeded by the conditions,
the column and the contributing entities (:mod:`.noise`). Blocks above it only
ever see those values. What may stand where is one table, default deny
(:mod:`.positions`, checked by :mod:`.plan`). Anchors: Open Diffix Elm's
low-count filter, outlier flattening and noise layers; the ABS/ONS cell-key
method's consistent perturbation; ACRO's dominance rule
(:mod:`query_guard.disclosure_rules`).
"""
