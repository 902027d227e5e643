"""Catalogue entry contract (R2: Shanghai Art.12, 15; Wuxi Art.11)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.contracts.names import clashes, describe_clashes, nfc, sql_name
from sandbox.input_limits import LongText, Name, Title

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

    #: The SQL name queries use: ASCII or Chinese (``sandbox.contracts.names``).
    name: str
    type: str
    sensitivity: Sensitivity = Sensitivity.none
    #: The column's header in the provider's file where it is not the SQL name (e.g.
    #: ``GDP增速`` read as ``gdp增速``, ``金额（万元）`` as ``金额_万元``); None: the name.
    header: Name | None = None
    #: The data item's name as the catalogue and the welcome notebook show it
    #: (e.g. 就诊日期); the SQL ``name`` stays the identifier queries use.
    label: Name = ""
    description: LongText = ""
    values: list[str | int] | None = None
    bounds: tuple[float, float] | None = None

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, v: str) -> str:
        return sql_name(v)

    @field_validator("header")
    @classmethod
    def _header_in_nfc(cls, v: str | None) -> str | None:
        """Files' headers are read in NFC too (``sandbox.catalog.reading``)."""
        return None if v is None else nfc(v)

    @property
    def file_header(self) -> str:
        """The header this column has in the provider's file."""
        return self.header or self.name

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
        return sql_name(v)

    @field_validator("entity")
    @classmethod
    def _entity_in_nfc(cls, v: str | None) -> str | None:
        return None if v is None else nfc(v)

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
        if found := clashes(names):
            raise ValueError(
                "column names must be unique and must not look alike; repeated or alike: "
                + describe_clashes(found)
            )
        # A file's headers are matched exactly (in NFC), so only a repeated one is ambiguous.
        if found := clashes([c.file_header for c in self.columns], key=str):
            raise ValueError(f"column headers must be unique; repeated: {describe_clashes(found)}")
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
