"""dataset versions are stored encrypted, so the digest of the stored file no longer names
their content: content_sha256 is the digest of the content as plain Parquet, which keys
aggregate mode's noise; for a version written before, its file is that plain Parquet, so
it is copied from sha256

Revision ID: 0009
Revises: 0008

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("dataset_versions", sa.Column("content_sha256", sa.String(length=64)))
    op.execute("UPDATE dataset_versions SET content_sha256 = sha256")
    with op.batch_alter_table("dataset_versions") as batch:
        batch.alter_column("content_sha256", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("content_sha256")
