"""Column types that keep sensitive fields sealed in the database (sandbox/keys/fields.py).

A :class:`Sealed` column holds its value encrypted under its purpose's key; the ORM and
Core see plain text, sealed on the way in and opened on the way out. A :class:`BlindIndex`
column holds the keyed hash of a value, and a value compared with it is hashed the same
way, so ``OidcLink.subject_index == subject`` finds a row without the subject in clear.
The empty string stays empty (it is no personal data, and ``email != ''`` keeps working).

The keys come from the key store the engine was bound to (:func:`bind_field_keys`, done
by :func:`platform_engine`), else from the configured settings' one: a process serving
other settings than its environment's (a test, a restore) binds its engine.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Dialect, Engine, String, Text
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from sandbox.db.base import make_engine
from sandbox.keys.fields import FieldKeys
from sandbox.keys.store import KeyStore, key_store
from sandbox.settings import Settings, get_settings

_BOUND: WeakKeyDictionary[Dialect, FieldKeys] = WeakKeyDictionary()
_CONFIGURED: dict[str, FieldKeys] = {}


def field_keys(settings: Settings) -> FieldKeys:
    """The field keys of ``settings``' key store, one per key store in a process."""
    root = str(settings.key_store_path.resolve())
    if root not in _CONFIGURED:
        _CONFIGURED[root] = FieldKeys(key_store(settings))
    return _CONFIGURED[root]


def bind_field_keys(engine: Engine, keys: FieldKeys) -> Engine:
    """Make the sensitive columns read and written through ``engine`` use ``keys``."""
    _BOUND[engine.dialect] = keys
    return engine


def platform_engine(settings: Settings) -> Engine:
    """An engine on the platform's database whose sealed columns use its key store."""
    return bind_field_keys(make_engine(settings.db_url), field_keys(settings))


def _keys(dialect: Dialect) -> FieldKeys:
    return _BOUND.get(dialect) or field_keys(get_settings())


def session_key_store(session: Session) -> KeyStore:
    """The key store of the engine ``session`` works on: what opens the files the rows it
    reads point at (export files, release bundles), as its sealed columns."""
    return _keys(session.get_bind().dialect).store


class Sealed(TypeDecorator[str]):
    """Text sealed under the key of ``purpose`` (its ``table.column``)."""

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return value and _keys(dialect).seal(self.purpose, value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return value and _keys(dialect).open(self.purpose, value)


class BlindIndex(TypeDecorator[str]):
    """The blind index of a :class:`Sealed` column's value: set it to the plain value (or
    compare it with one), and the keyed hash is what is stored (or compared)."""

    impl = String(64)
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else _keys(dialect).index(self.purpose, value)
