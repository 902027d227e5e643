"""rows returned per agreement and day as a running total (query_day_rows), so the
bulk-extraction warning reads one row per query instead of summing the day's query log
(which grew with every query); a day without a row starts from the log

Revision ID: 0008
Revises: 0007

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "query_day_rows",
        sa.Column("agreement_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", "day"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("query_day_rows")
