"""personal data in the platform's database is sealed with the key store's field keys: users'
names and e-mail addresses, persons' legal names and the subjects identity providers know
them by (sandbox/keys/fields.py); existing values are sealed here, and an OIDC subject is
found by its blind index (oidc_links.subject_index) instead of its value. Sealed values
are longer than the values were, so the columns become TEXT.

The keys are the key store's of the settings the upgrade runs under (``field_keys`` in the
Alembic config's attributes, set by :func:`sandbox.db.schema.ensure_schema`, else the
configured settings'): upgrade with the platform's own key store in place.

Revision ID: 0011
Revises: 0009

"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from sandbox.keys.fields import FieldKeys

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table -> (primary key, sealed columns and the length each had in clear)
SEALED = {
    "users": ("id", {"display_name": 200, "email": 200}),
    "person_identities": ("user_id", {"legal_name": 200}),
    "oidc_links": ("id", {"subject": 255}),
}


def _keys() -> FieldKeys:
    from sandbox.db.sealed import field_keys
    from sandbox.settings import get_settings

    return context.config.attributes.get("field_keys") or field_keys(get_settings())


def _convert(table: str, change: Callable[[FieldKeys, str, str], str]) -> None:
    """Rewrite every non-empty sealed column of ``table`` with ``change(keys, purpose,
    value)``; the key store is read only when there is a value."""
    key, columns = SEALED[table]
    rows = sa.table(table, sa.column(key), *(sa.column(c) for c in columns))
    bind = op.get_bind()
    found = bind.execute(sa.select(rows)).mappings().all()
    keys = _keys() if any(r[c] for r in found for c in columns) else None
    for row in found:
        values = {c: change(keys, f"{table}.{c}", row[c]) for c in columns if keys and row[c]}
        if values:
            bind.execute(rows.update().where(rows.c[key] == row[key]).values(values))


def _retype(table: str, sealed: bool) -> None:
    _, columns = SEALED[table]
    with op.batch_alter_table(table) as batch:
        for column, length in columns.items():
            clear, stored = sa.String(length=length), sa.Text()
            batch.alter_column(
                column,
                existing_type=clear if sealed else stored,
                type_=stored if sealed else clear,
                existing_nullable=False,
            )


def upgrade() -> None:
    """Upgrade schema."""
    for table in SEALED:
        _retype(table, sealed=True)
    with op.batch_alter_table("oidc_links") as batch:
        batch.add_column(sa.Column("subject_index", sa.String(length=64), nullable=True))
        batch.drop_constraint("uq_oidc_links_issuer_subject", type_="unique")
    links = sa.table("oidc_links", *(sa.column(c) for c in ("id", "subject", "subject_index")))
    bind = op.get_bind()
    found = bind.execute(sa.select(links.c.id, links.c.subject)).all()
    keys = _keys() if found else None
    for ident, subject in found:
        index = keys.index("oidc_links.subject", subject)
        bind.execute(links.update().where(links.c.id == ident).values(subject_index=index))
    for table in SEALED:
        _convert(table, lambda keys, purpose, value: keys.seal(purpose, value))
    with op.batch_alter_table("oidc_links") as batch:
        batch.alter_column("subject_index", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint(
            "uq_oidc_links_issuer_subject_index", ["issuer", "subject_index"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    for table in SEALED:
        _convert(table, lambda keys, purpose, value: keys.open(purpose, value))
    with op.batch_alter_table("oidc_links") as batch:
        batch.drop_constraint("uq_oidc_links_issuer_subject_index", type_="unique")
        batch.drop_column("subject_index")
    for table in SEALED:
        _retype(table, sealed=False)
    with op.batch_alter_table("oidc_links") as batch:
        batch.create_unique_constraint("uq_oidc_links_issuer_subject", ["issuer", "subject"])
