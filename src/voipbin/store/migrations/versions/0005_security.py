"""security: one live signup code per address (issue 13, finding 5)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # keep only the newest live code of each address, then let the database hold the rule
    op.execute(sa.text(
        "DELETE FROM signups WHERE tm_complete IS NULL AND EXISTS ("
        " SELECT 1 FROM signups newer WHERE newer.email = signups.email AND newer.tm_complete IS NULL"
        " AND (newer.tm_create > signups.tm_create"
        " OR (newer.tm_create = signups.tm_create AND newer.temp_token > signups.temp_token)))"))
    with op.batch_alter_table('signups', schema=None) as batch_op:
        batch_op.create_index('uq_signups_email_live', ['email'], unique=True,
                              sqlite_where=sa.text('tm_complete IS NULL'),
                              postgresql_where=sa.text('tm_complete IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('signups', schema=None) as batch_op:
        batch_op.drop_index('uq_signups_email_live')
