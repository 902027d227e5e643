"""Steps of the migrations that seal columns of the platform's database already holding
values (0011, 0012): retype them to TEXT (a sealed value is longer than the value was)
and seal or open every value with the key store's field keys (sandbox/keys/fields.py).

The keys are the key store's of the settings the migration runs under (``field_keys`` in
the Alembic config's attributes, set by :func:`sandbox.db.schema.ensure_schema`, else the
configured settings'): upgrade with the platform's own key store in place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sqlalchemy as sa
from alembic import context, op

from sandbox.keys.fields import FieldKeys

#: What a migration does to one value: ``change(keys, purpose, value)``.
Change = Callable[[FieldKeys, str, str], str]


def migration_keys() -> FieldKeys:
    """The field keys the running migration seals and opens with."""
    from sandbox.db.sealed import field_keys
    from sandbox.settings import get_settings

    return context.config.attributes.get("field_keys") or field_keys(get_settings())


def seal(keys: FieldKeys, purpose: str, value: str) -> str:
    return keys.seal(purpose, value)


def unseal(keys: FieldKeys, purpose: str, value: str) -> str:
    return keys.open(purpose, value)


def convert(table: str, key: str, columns: Mapping[str, int], change: Change) -> None:
    """Rewrite every non-empty column of ``columns`` in ``table`` (primary key ``key``)
    with ``change``, each under the purpose ``table.column``; the key store is read only
    when there is a value."""
    rows = sa.table(table, sa.column(key), *(sa.column(c) for c in columns))
    bind = op.get_bind()
    found = bind.execute(sa.select(rows)).mappings().all()
    keys = migration_keys() if any(r[c] for r in found for c in columns) else None
    for row in found:
        values = {c: change(keys, f"{table}.{c}", row[c]) for c in columns if keys and row[c]}
        if values:
            bind.execute(rows.update().where(rows.c[key] == row[key]).values(values))


def retype(table: str, columns: Mapping[str, int], *, sealed: bool) -> None:
    """``columns`` (name -> length in clear) of ``table`` as TEXT, or back to VARCHAR."""
    with op.batch_alter_table(table) as batch:
        for column, length in columns.items():
            clear, stored = sa.String(length=length), sa.Text()
            batch.alter_column(
                column,
                existing_type=clear if sealed else stored,
                type_=stored if sealed else clear,
                existing_nullable=False,
            )
