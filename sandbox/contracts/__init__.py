"""The YAML contracts of ARCHITECTURE.md (catalogue entry, agreement) as typed models.

These are stable interfaces: outside checks rely on them, so fields are only
ever added compatibly. Unknown fields are an error, never ignored.
"""

from sandbox.contracts.agreement import Agreement, AgreementDataset, Disclosure, Privacy, Review
from sandbox.contracts.catalog_entry import CatalogEntry, Column, OpenClass, Sensitivity
from sandbox.contracts.loading import (
    dump_agreement,
    load_agreement,
    load_agreement_text,
    load_catalog,
    load_catalog_entry,
)

__all__ = [
    "Agreement",
    "AgreementDataset",
    "CatalogEntry",
    "Column",
    "Disclosure",
    "OpenClass",
    "Privacy",
    "Review",
    "Sensitivity",
    "dump_agreement",
    "load_agreement",
    "load_agreement_text",
    "load_catalog",
    "load_catalog_entry",
]
