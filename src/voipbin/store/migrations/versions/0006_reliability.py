"""reliability: pods (heartbeats), calls.pod_id, per-resource order of the webhook outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

from voipbin.store.types import UTCDateTime


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pods',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('tm_heartbeat', UTCDateTime(), nullable=False),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pod_id', sa.String(length=128), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_calls_pod_id'), ['pod_id'], unique=False)
    with op.batch_alter_table('event_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resource_key', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.create_index('ix_event_outbox_resource_seq', ['resource_key', 'seq'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('event_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_event_outbox_resource_seq')
        batch_op.drop_column('seq')
        batch_op.drop_column('resource_key')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_pod_id'))
        batch_op.drop_column('pod_id')
    op.drop_table('pods')
