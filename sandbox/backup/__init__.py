"""Backups of the platform (R13; Rizhao Art.29 数据备份, Putuo Art.32 灾难备份).

One archive holds the database (and so the audit record), every published
dataset version, the keys, the files of export requests and the signed release
bundles, with a manifest of SHA-256s, all from one snapshot. What must not
outlive an agreement is left out (R16; Rizhao Art.31): the pseudonym keys and
export-request files of ended agreements, and every per-agreement DuckDB file
(provisioning rebuilds those from the datasets). Released bundles are kept:
they passed review and left the platform, and are the provenance record.
The archive is encrypted to the operator's public key (``crypto.py``), so the
platform can write backups but not read them.
"""
