"""conferences and conferencecalls; transcripts.call_id (who spoke, in a conference)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

from voipbin.store.types import UTCDateTime


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conferences',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('timeout', sa.Integer(), nullable=False),
    sa.Column('pre_flow_id', sa.String(length=36), nullable=False),
    sa.Column('post_flow_id', sa.String(length=36), nullable=False),
    sa.Column('conferencecall_ids', sa.JSON(), nullable=False),
    sa.Column('recording_id', sa.String(length=36), nullable=False),
    sa.Column('recording_ids', sa.JSON(), nullable=False),
    sa.Column('transcribe_id', sa.String(length=36), nullable=False),
    sa.Column('transcribe_ids', sa.JSON(), nullable=False),
    sa.Column('pod_id', sa.String(length=128), nullable=False),
    sa.Column('tm_end', UTCDateTime(), nullable=True),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.Column('tm_update', UTCDateTime(), nullable=True),
    sa.Column('tm_delete', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conferences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conferences_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conferences_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_conferences_tm_create'), ['tm_create'], unique=False)
    op.create_table('conferencecalls',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('activeflow_id', sa.String(length=36), nullable=False),
    sa.Column('conference_id', sa.String(length=36), nullable=False),
    sa.Column('reference_type', sa.String(length=16), nullable=False),
    sa.Column('reference_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.Column('tm_update', UTCDateTime(), nullable=True),
    sa.Column('tm_delete', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['conference_id'], ['conferences.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conferencecalls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conferencecalls_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conferencecalls_conference_id'), ['conference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conferencecalls_reference_id'), ['reference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conferencecalls_tm_create'), ['tm_create'], unique=False)
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('call_id', sa.String(length=36), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.drop_column('call_id')
    op.drop_table('conferencecalls')
    op.drop_table('conferences')
