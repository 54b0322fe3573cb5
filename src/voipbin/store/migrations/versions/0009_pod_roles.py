"""pods: the SIP address and load of a media pod (scale-out roles, issue 19)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sip_host', sa.String(length=255), server_default='', nullable=False))
        batch_op.add_column(sa.Column('sip_port', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('load', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('pods', schema=None) as batch_op:
        batch_op.drop_column('load')
        batch_op.drop_column('sip_port')
        batch_op.drop_column('sip_host')
