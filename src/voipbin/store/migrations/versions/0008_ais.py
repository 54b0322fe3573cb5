"""the managed AI: ais, aicalls, aimessages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

from voipbin.store.types import UTCDateTime


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [sa.Column('tm_create', UTCDateTime(), nullable=False),
            sa.Column('tm_update', UTCDateTime(), nullable=True),
            sa.Column('tm_delete', UTCDateTime(), nullable=True)]


def upgrade() -> None:
    op.create_table('ais',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('engine_model', sa.String(length=128), nullable=False),
    sa.Column('parameter', sa.JSON(), nullable=False),
    sa.Column('engine_key_encrypted', sa.Text(), nullable=False),
    sa.Column('engine_key_hint', sa.String(length=8), nullable=False),
    sa.Column('rag_id', sa.String(length=36), nullable=False),
    sa.Column('init_prompt', sa.Text(), nullable=False),
    sa.Column('tts_type', sa.String(length=32), nullable=False),
    sa.Column('tts_voice_id', sa.String(length=128), nullable=False),
    sa.Column('stt_type', sa.String(length=32), nullable=False),
    sa.Column('stt_language', sa.String(length=35), nullable=False),
    sa.Column('vad_config', sa.JSON(), nullable=False),
    sa.Column('smart_turn_enabled', sa.Boolean(), nullable=False),
    sa.Column('auto_aicall_audit_enabled', sa.Boolean(), nullable=False),
    sa.Column('tool_names', sa.JSON(), nullable=False),
    *_timestamps(),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ais', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ais_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ais_tm_create'), ['tm_create'], unique=False)
    op.create_table('aicalls',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('assistance_type', sa.String(length=16), nullable=False),
    sa.Column('assistance_id', sa.String(length=36), nullable=False),
    sa.Column('ai_engine_model', sa.String(length=128), nullable=False),
    sa.Column('ai_tts_type', sa.String(length=32), nullable=False),
    sa.Column('ai_tts_voice_id', sa.String(length=128), nullable=False),
    sa.Column('ai_stt_type', sa.String(length=32), nullable=False),
    sa.Column('ai_vad_config', sa.JSON(), nullable=False),
    sa.Column('ai_smart_turn_enabled', sa.Boolean(), nullable=False),
    sa.Column('parameter', sa.JSON(), nullable=False),
    sa.Column('activeflow_id', sa.String(length=36), nullable=False),
    sa.Column('reference_type', sa.String(length=16), nullable=False),
    sa.Column('reference_id', sa.String(length=36), nullable=False),
    sa.Column('confbridge_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stt_language', sa.String(length=35), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('pod_id', sa.String(length=128), nullable=False),
    sa.Column('tm_end', UTCDateTime(), nullable=True),
    *_timestamps(),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('aicalls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aicalls_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_aicalls_reference_id'), ['reference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_aicalls_tm_create'), ['tm_create'], unique=False)
    op.create_table('aimessages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('aicall_id', sa.String(length=36), nullable=False),
    sa.Column('activeflow_id', sa.String(length=36), nullable=False),
    sa.Column('active_ai_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('tool_calls', sa.JSON(), nullable=False),
    sa.Column('tool_call_id', sa.String(length=128), nullable=False),
    *_timestamps(),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['aicall_id'], ['aicalls.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('aimessages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aimessages_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_aimessages_aicall_id'), ['aicall_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_aimessages_tm_create'), ['tm_create'], unique=False)


def downgrade() -> None:
    op.drop_table('aimessages')
    op.drop_table('aicalls')
    op.drop_table('ais')
