"""What the guard knows about one agreement: its datasets, columns, keys and clauses."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from sqlglot import exp
from sqlglot.schema import MappingSchema

from query_guard.compile import column_types, stored_entity
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry, Sensitivity

#: Regulation articles the guard cites.
USE_WITHIN_SCENARIO = "Wuxi Art.15(4); Shanghai Art.28"
DESENSITISATION = "Rizhao Art.29; Putuo Art.32"
SUSPENSION = "Shanghai Art.22"


@dataclass(frozen=True, eq=False)
class GuardContext:
    """The agreement and catalogue a query is checked against.

    ``suspended`` names datasets whose opening is suspended after a rights
    complaint (Shanghai Art.22): queries touching them are refused.
    """

    agreement: Agreement
    catalog: Mapping[str, CatalogEntry]
    suspended: frozenset[str] = field(default_factory=frozenset)

    @property
    def mode(self) -> str:
        return self.agreement.mode

    def clause(self, path: str) -> str:
        """Cite a clause of this agreement, e.g. ``agreement AGR-1 disclosure.min_group_size``."""
        return f"agreement {self.agreement.id} {path}"

    @cached_property
    def schema(self) -> dict[str, dict[str, str]]:
        """Tables and typed columns of the per-agreement database, suspended datasets left out.

        Pseudonymised columns are typed BIGINT as stored, so the join rule compares
        what DuckDB compares; hidden build columns (the DP contribution rank) are not
        listed, so any reference to them fails qualification and is refused.
        """
        return {
            name: column_types(self.agreement, self.catalog[name])
            for name in self.agreement.datasets
            if name not in self.suspended
        }

    @cached_property
    def sqlglot_schema(self) -> MappingSchema:
        """:attr:`schema` as sqlglot's own object, built once per agreement: given the plain
        mapping, qualifying and typing normalised every name of it again on each query."""
        return MappingSchema(self.schema, dialect="duckdb")

    @cached_property
    def fingerprint(self) -> str:
        """Everything a decision depends on besides the SQL text and the guard's own code:
        the agreement, the catalogue entries of its datasets, and which are suspended."""
        digest = hashlib.sha256(self.agreement.model_dump_json().encode())
        for name in sorted(self.agreement.datasets):
            entry = self.catalog.get(name)
            digest.update(b"\0" + (entry.model_dump_json().encode() if entry else b"-"))
        digest.update(b"\0" + ",".join(sorted(self.suspended)).encode())
        return digest.hexdigest()

    @cached_property
    def _built_types(self) -> dict[str, dict[str, exp.DataType]]:
        return {
            name: {column: exp.DataType.build(kind) for column, kind in columns.items()}
            for name, columns in self.schema.items()
        }

    def column_type(self, dataset: str, column: str) -> exp.DataType | None:
        """A column's type as sqlglot's tree, built once per agreement (building one from
        its text parses it, which cost a tenth of each decision). Read it, never change it."""
        return self._built_types.get(dataset, {}).get(column)

    def is_hidden(self, dataset: str, column: str) -> bool:
        """A column stored only for the guard (the entity in aggregate mode), not agreed."""
        return column not in self.agreement.datasets[dataset].columns

    def is_protected(self, dataset: str, column: str) -> bool:
        """Identifier columns and hidden columns: their values are never shown."""
        entry = self.catalog[dataset]
        return self.is_hidden(dataset, column) or (
            entry.column(column).sensitivity == Sensitivity.identifier
        )

    def is_identifier(self, dataset: str, column: str) -> bool:
        """A column the catalogue declares an identifier (stored as a pseudonym)."""
        return self.catalog[dataset].column(column).sensitivity == Sensitivity.identifier

    def entity(self, dataset: str) -> str | None:
        """The dataset's entity column if the database holds it."""
        entity = self.catalog[dataset].entity
        return entity if entity and entity in self.schema.get(dataset, {}) else None

    def stored_entity(self, dataset: str) -> str | None:
        """The entity column the dataset's private table holds (aggregate mode counts by it)."""
        if dataset not in self.schema:
            return None
        return stored_entity(self.agreement, self.catalog[dataset])

    def is_declared_join(self, left: tuple[str, str], right: tuple[str, str]) -> bool:
        pair = {f"{left[0]}.{left[1]}", f"{right[0]}.{right[1]}"}
        return any(pair == {a, b} for a, b in self.agreement.joins)
