"""Read and write the YAML contracts, turning every problem into a ContractError
that names the file, the field and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry
from sandbox.errors import ContractError

M = TypeVar("M", bound=BaseModel)


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _explain(err: ValidationError, origin: str) -> str:
    lines = []
    for e in err.errors():
        field = _field_path(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (unknown fields are an error, not ignored)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"{origin}: {field}: {msg}")
    return "; ".join(lines)


def _parse_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{origin}: not valid YAML: {exc}", rule="contract-yaml") from exc
    if not isinstance(data, dict):
        raise ContractError(f"{origin}: must be a YAML mapping", rule="contract-yaml")
    return data


def _build(model: type[M], data: dict[str, Any], origin: str, rule: str, **extra: Any) -> M:
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as exc:
        raise ContractError(_explain(exc, origin), rule=rule) from exc


def _read(path: Path, origin: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError(
            f"{origin}: cannot be read: {exc.strerror}", rule="contract-io"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ContractError(
            f"{origin}: is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}: "
            f"{exc.reason}); contracts are YAML in UTF-8",
            rule="contract-encoding",
        ) from exc


def load_catalog_entry(path: str | Path, origin: str | None = None) -> CatalogEntry:
    """Load one catalogue entry; relative ``source`` paths resolve against its directory.

    Problems name the file as ``origin`` (default: its path): an entry uploaded to the
    platform is named as its sender knows it, never by where the server keeps it."""
    path = Path(path)
    origin = str(path) if origin is None else origin
    data = _parse_yaml(_read(path, origin), origin)
    return _build(CatalogEntry, data, origin, "catalog-entry", base_dir=path.parent.resolve())


def load_catalog(directory: str | Path) -> dict[str, CatalogEntry]:
    """Load every ``*.yaml``/``*.yml`` entry of a catalogue directory, keyed by dataset name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ContractError(f"{directory}: catalogue directory not found", rule="contract-io")
    entries: dict[str, CatalogEntry] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        entry = load_catalog_entry(path)
        if entry.name in entries:
            raise ContractError(
                f"{path}: name: dataset {entry.name!r} is declared twice in {directory}",
                rule="catalog-entry",
            )
        entries[entry.name] = entry
    return entries


def load_agreement_text(text: str, origin: str = "<agreement>") -> Agreement:
    """Parse an agreement from YAML text."""
    return _build(Agreement, _parse_yaml(text, origin), origin, "agreement")


def load_agreement(path: str | Path) -> Agreement:
    """Load an agreement YAML file."""
    path = Path(path)
    return load_agreement_text(_read(path, str(path)), str(path))


def dump_agreement(agreement: Agreement) -> str:
    """The agreement as YAML in the contract's field order (round-trips through load)."""
    data = agreement.model_dump(mode="json", exclude_none=True)
    data["joins"] = [list(j) for j in agreement.joins]
    data["disclosure"]["dominance"] = list(agreement.disclosure.dominance)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
