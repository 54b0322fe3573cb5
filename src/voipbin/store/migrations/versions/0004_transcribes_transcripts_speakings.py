"""transcribes transcripts speakings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from alembic import op
import sqlalchemy as sa

from voipbin.store.types import UTCDateTime


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('speakings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('reference_type', sa.String(length=16), nullable=False),
    sa.Column('reference_id', sa.String(length=36), nullable=False),
    sa.Column('language', sa.String(length=35), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('voice_id', sa.String(length=128), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pod_id', sa.String(length=128), nullable=False),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.Column('tm_update', UTCDateTime(), nullable=True),
    sa.Column('tm_delete', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('speakings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_speakings_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_speakings_reference_id'), ['reference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_speakings_tm_create'), ['tm_create'], unique=False)

    op.create_table('transcribes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('activeflow_id', sa.String(length=36), nullable=False),
    sa.Column('on_end_flow_id', sa.String(length=36), nullable=False),
    sa.Column('reference_type', sa.String(length=16), nullable=False),
    sa.Column('reference_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=35), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('pod_id', sa.String(length=128), nullable=False),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.Column('tm_update', UTCDateTime(), nullable=True),
    sa.Column('tm_delete', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transcribes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transcribes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcribes_reference_id'), ['reference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcribes_tm_create'), ['tm_create'], unique=False)

    op.create_table('transcripts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('transcribe_id', sa.String(length=36), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('tm_transcript', UTCDateTime(), nullable=True),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.Column('tm_update', UTCDateTime(), nullable=True),
    sa.Column('tm_delete', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['transcribe_id'], ['transcribes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transcripts_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcripts_tm_create'), ['tm_create'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcripts_transcribe_id'), ['transcribe_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transcripts_transcribe_id'))
        batch_op.drop_index(batch_op.f('ix_transcripts_tm_create'))
        batch_op.drop_index(batch_op.f('ix_transcripts_customer_id'))

    op.drop_table('transcripts')
    with op.batch_alter_table('transcribes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transcribes_tm_create'))
        batch_op.drop_index(batch_op.f('ix_transcribes_reference_id'))
        batch_op.drop_index(batch_op.f('ix_transcribes_customer_id'))

    op.drop_table('transcribes')
    with op.batch_alter_table('speakings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_speakings_tm_create'))
        batch_op.drop_index(batch_op.f('ix_speakings_reference_id'))
        batch_op.drop_index(batch_op.f('ix_speakings_customer_id'))

    op.drop_table('speakings')
