"""personal data in the platform's database is sealed with the key store's field keys: users'
names and e-mail addresses, persons' legal names and the subjects identity providers know
them by (sandbox/keys/fields.py); existing values are sealed here, and an OIDC subject is
found by its blind index (oidc_links.subject_index) instead of its value. Sealed values
are longer than the values were, so the columns become TEXT.

The keys are those of the settings the upgrade runs under (sandbox/db/sealing_steps.py).

Revision ID: 0011
Revises: 0009

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sandbox.db.sealing_steps import convert, migration_keys, retype, seal, unseal

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


def upgrade() -> None:
    """Upgrade schema."""
    for table, (_, columns) in SEALED.items():
        retype(table, columns, sealed=True)
    with op.batch_alter_table("oidc_links") as batch:
        batch.add_column(sa.Column("subject_index", sa.String(length=64), nullable=True))
        batch.drop_constraint("uq_oidc_links_issuer_subject", type_="unique")
    links = sa.table("oidc_links", *(sa.column(c) for c in ("id", "subject", "subject_index")))
    bind = op.get_bind()
    found = bind.execute(sa.select(links.c.id, links.c.subject)).all()
    keys = migration_keys() if found else None
    for ident, subject in found:
        index = keys.index("oidc_links.subject", subject)
        bind.execute(links.update().where(links.c.id == ident).values(subject_index=index))
    for table, (key, columns) in SEALED.items():
        convert(table, key, columns, seal)
    with op.batch_alter_table("oidc_links") as batch:
        batch.alter_column("subject_index", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint(
            "uq_oidc_links_issuer_subject_index", ["issuer", "subject_index"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    for table, (key, columns) in SEALED.items():
        convert(table, key, columns, unseal)
    with op.batch_alter_table("oidc_links") as batch:
        batch.drop_constraint("uq_oidc_links_issuer_subject_index", type_="unique")
        batch.drop_column("subject_index")
    for table, (_, columns) in SEALED.items():
        retype(table, columns, sealed=False)
    with op.batch_alter_table("oidc_links") as batch:
        batch.create_unique_constraint("uq_oidc_links_issuer_subject", ["issuer", "subject"])
