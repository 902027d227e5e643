"""export requests name their output form; a figure is a chart specification the platform
draws (export_requests.form and .chart), no longer a researcher's image with a data file
(export_requests.figure_data goes)

Revision ID: 0004
Revises: 0003

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The form an earlier request left as, from its kind and its files' extensions.
LEGACY_FORM = """
UPDATE export_requests SET form = CASE
  WHEN kind = 'dp' THEN 'dp_table'
  WHEN EXISTS (SELECT 1 FROM export_files f WHERE f.request_id = export_requests.id
               AND lower(f.name) LIKE '%.png') THEN 'figure'
  WHEN EXISTS (SELECT 1 FROM export_files f WHERE f.request_id = export_requests.id
               AND (lower(f.name) LIKE '%.csv' OR lower(f.name) LIKE '%.json')) THEN 'table'
  ELSE 'report' END
"""


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("export_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("form", sa.String(length=16), nullable=False,
                                      server_default=""))  # fmt: skip
        batch_op.add_column(sa.Column("chart", sa.JSON(), nullable=True))
    op.execute(LEGACY_FORM)
    with op.batch_alter_table("export_requests", schema=None) as batch_op:
        batch_op.alter_column("form", server_default=None)
        batch_op.drop_column("figure_data")


def downgrade() -> None:
    """Downgrade schema (the chart specifications are lost; released bundles keep theirs)."""
    with op.batch_alter_table("export_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("figure_data", sa.JSON(), nullable=False,
                                      server_default="{}"))  # fmt: skip
    with op.batch_alter_table("export_requests", schema=None) as batch_op:
        batch_op.alter_column("figure_data", server_default=None)
        batch_op.drop_column("chart")
        batch_op.drop_column("form")
