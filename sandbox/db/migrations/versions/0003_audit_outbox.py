"""audit outbox (events committed with their change, linked into the chain after the commit);
query_log.audit_seq may be empty (a query's event now names its query-log row instead)

Revision ID: 0003
Revises: 0002

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "audit_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.String(length=27), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("object", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_outbox")),
    )
    with op.batch_alter_table("query_log", schema=None) as batch_op:
        batch_op.alter_column("audit_seq", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    """Downgrade schema (refused while events wait in the outbox: they would be lost)."""
    waiting = op.get_bind().execute(sa.text("SELECT count(*) FROM audit_outbox")).scalar()
    if waiting:
        raise RuntimeError(
            f"{waiting} audit events wait in audit_outbox; start the platform once so they "
            "are linked into the chain, then downgrade"
        )
    op.execute("UPDATE query_log SET audit_seq = 0 WHERE audit_seq IS NULL")
    with op.batch_alter_table("query_log", schema=None) as batch_op:
        batch_op.alter_column("audit_seq", existing_type=sa.BigInteger(), nullable=False)
    op.drop_table("audit_outbox")
