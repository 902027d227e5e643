"""Backups of the platform (R13; Rizhao Art.29 数据备份, Putuo Art.32 灾难备份).

One archive holds the database (and so the audit record), every published
dataset version and the keys, with a manifest of SHA-256s. What must not
outlive an agreement is left out (R16; Rizhao Art.31): the pseudonym keys of
ended agreements, and every per-agreement DuckDB file (provisioning rebuilds
those from the datasets).
"""
