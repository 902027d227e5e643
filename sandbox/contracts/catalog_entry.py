"""Catalogue entry contract (R2: Shanghai Art.12, 15; Wuxi Art.11)."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.input_limits import LongText, Name, Title

SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: DuckDB types a catalogue column may declare; the quality report and the
#: per-agreement build cast to them.
COLUMN_TYPES = (
    "VARCHAR",
    "BIGINT",
    "INTEGER",
    "DOUBLE",
    "DECIMAL",
    "BOOLEAN",
    "DATE",
    "TIMESTAMP",
)


class OpenClass(StrEnum):
    """The three open classes (R1: Shanghai Art.11; Wuxi Art.7-8)."""

    unconditional = "unconditional"
    conditional = "conditional"
    non_open = "non_open"


class Sensitivity(StrEnum):
    """How a data item is protected. Identifiers are pseudonymised and never returned."""

    identifier = "identifier"
    quasi_identifier = "quasi_identifier"
    sensitive = "sensitive"
    none = "none"


class Column(BaseModel):
    """One data item of a dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    type: str
    sensitivity: Sensitivity = Sensitivity.none
    #: The data item's name in Chinese as the catalogue and the welcome notebook show it
    #: (e.g. 就诊日期); the SQL ``name`` stays the identifier queries use.
    label: Name = ""
    description: LongText = ""
    values: list[str | int] | None = None
    bounds: tuple[float, float] | None = None

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, v: str) -> str:
        if not SQL_IDENTIFIER.match(v):
            raise ValueError("must be a lower-case SQL identifier: letters, digits, underscore")
        return v

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        upper = v.upper()
        if upper not in COLUMN_TYPES:
            raise ValueError(f"must be one of {', '.join(COLUMN_TYPES)}")
        return upper

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Column:
        if self.bounds is not None and self.bounds[0] > self.bounds[1]:
            raise ValueError("bounds must be [lower, upper] with lower <= upper")
        return self


class CatalogEntry(BaseModel):
    """One dataset in the open catalogue, as its YAML file states it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    title: Title
    provider: Name
    domain: Name
    summary: LongText
    open_class: OpenClass
    conditions: LongText = ""
    format: str = "parquet"
    update_frequency: str
    contact: Name
    entity: str | None = None
    source: str | None = None
    columns: list[Column] = Field(min_length=1)
    #: Synthetic data with no real person's or organisation's information: the only data a
    #: development workspace (not isolated: its kernel can open the platform's files) serves.
    demo_data: bool = False
    #: Directory of the YAML file, so relative ``source`` paths resolve against it.
    base_dir: Path | None = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, v: str) -> str:
        if not SQL_IDENTIFIER.match(v):
            raise ValueError("must be a lower-case SQL identifier: letters, digits, underscore")
        return v

    @field_validator("update_frequency")
    @classmethod
    def _known_frequency(cls, v: str) -> str:
        from sandbox.contracts.frequency import FREQUENCIES

        if v not in FREQUENCIES:
            raise ValueError(f"must be one of {', '.join(FREQUENCIES)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CatalogEntry:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"column names must be unique; repeated: {', '.join(dupes)}")
        if self.entity is not None and self.entity not in names:
            raise ValueError(f"entity {self.entity!r} must be one of the columns: {names}")
        if self.open_class == OpenClass.conditional and not self.conditions.strip():
            raise ValueError(
                "conditional datasets must publish their access conditions (Shanghai Art.15)"
            )
        return self

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def identifier_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.sensitivity == Sensitivity.identifier]

    def source_path(self) -> Path | None:
        """The data file, with a relative path resolved against the YAML file's directory."""
        if self.source is None:
            return None
        p = Path(self.source)
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        return p
