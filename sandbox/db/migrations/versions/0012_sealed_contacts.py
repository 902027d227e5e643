"""how to reach the people who object, complain, report misuse or ask for data is sealed
with the key store's field keys (sandbox/keys/fields.py), as users' e-mail addresses are:
the contact of objections, complaints, tip-offs and demands. Existing values are sealed
here (opened again on downgrade); sealed values are longer, so the columns become TEXT.
The keys are those of the settings the upgrade runs under (sandbox/db/sealing_steps.py).

Revision ID: 0012
Revises: 0011

"""

from collections.abc import Sequence

from sandbox.db.sealing_steps import convert, retype, seal, unseal

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Each table's contact column and the length it had in clear.
CONTACT = {"contact": 200}
TABLES = ("objections", "complaints", "tipoffs", "demands")


def upgrade() -> None:
    """Upgrade schema."""
    for table in TABLES:
        retype(table, CONTACT, sealed=True)
        convert(table, "id", CONTACT, seal)


def downgrade() -> None:
    """Downgrade schema."""
    for table in TABLES:
        convert(table, "id", CONTACT, unseal)
        retype(table, CONTACT, sealed=False)
