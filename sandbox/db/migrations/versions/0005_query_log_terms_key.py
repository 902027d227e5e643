"""the query log keeps one digest of each query's WHERE conjuncts (query_log.terms_key), so
the differencing warning reads one row per distinct set of conditions rather than every
earlier query of the same shape (which grew with every repetition under load)

Revision ID: 0005
Revises: 0004

"""

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _terms_key(terms: list[str]) -> str:
    """As query_guard.service.fingerprint.terms_key computes it (kept here as written at
    this revision: a migration must not change when the code does)."""
    return hashlib.sha256("\x1f".join(sorted(terms)).encode()).hexdigest()


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("query_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("terms_key", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, where_terms FROM query_log WHERE shape IS NOT NULL"))
    for row_id, terms in rows.fetchall():
        if isinstance(terms, str):
            terms = json.loads(terms)
        bind.execute(
            sa.text("UPDATE query_log SET terms_key = :key WHERE id = :id"),
            {"key": _terms_key(terms or []), "id": row_id},
        )
    op.create_index(
        "ix_query_log_agreement_shape", "query_log", ["agreement_id", "shape", "terms_key"]
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_query_log_agreement_shape", table_name="query_log")
    with op.batch_alter_table("query_log", schema=None) as batch_op:
        batch_op.drop_column("terms_key")
