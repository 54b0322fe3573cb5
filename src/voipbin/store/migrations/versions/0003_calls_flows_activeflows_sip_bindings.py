"""calls, flows, activeflows, sip bindings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op
import sqlalchemy as sa

from voipbin.store.types import UTCDateTime


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sip_bindings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('aor', sa.String(length=320), nullable=False),
    sa.Column('contact', sa.Text(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('extension_id', sa.String(length=64), nullable=False),
    sa.Column('user', sa.String(length=64), nullable=False),
    sa.Column('received_host', sa.String(length=64), nullable=False),
    sa.Column('received_port', sa.Integer(), nullable=False),
    sa.Column('transport', sa.String(length=8), nullable=False),
    sa.Column('call_id', sa.String(length=255), nullable=False),
    sa.Column('cseq', sa.Integer(), nullable=False),
    sa.Column('user_agent', sa.Text(), nullable=False),
    sa.Column('q', sa.String(length=8), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sip_bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sip_bindings_aor'), ['aor'], unique=False)
        batch_op.create_index(batch_op.f('ix_sip_bindings_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sip_bindings_extension_id'), ['extension_id'], unique=False)
        batch_op.create_index('uq_sip_bindings_aor_contact', ['aor', 'contact'], unique=True)

    op.create_table('activeflows',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('flow_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reference_type', sa.String(length=16), nullable=False),
    sa.Column('reference_id', sa.String(length=36), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('current_action', sa.JSON(), nullable=False),
    sa.Column('forward_action_id', sa.String(length=36), nullable=False),
    sa.Column('executed_actions', sa.JSON(), nullable=False),
    sa.Column('variables', sa.JSON(), nullable=False),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.Column('tm_update', UTCDateTime(), nullable=True),
    sa.Column('tm_delete', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('activeflows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activeflows_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activeflows_reference_id'), ['reference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activeflows_tm_create'), ['tm_create'], unique=False)

    op.create_table('calls',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('flow_id', sa.String(length=36), nullable=False),
    sa.Column('activeflow_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('groupcall_id', sa.String(length=36), nullable=False),
    sa.Column('source', sa.JSON(), nullable=False),
    sa.Column('destination', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('action', sa.JSON(), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('mute_direction', sa.String(length=8), nullable=False),
    sa.Column('hangup_by', sa.String(length=8), nullable=False),
    sa.Column('hangup_reason', sa.String(length=16), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('tm_ringing', UTCDateTime(), nullable=True),
    sa.Column('tm_progressing', UTCDateTime(), nullable=True),
    sa.Column('tm_hangup', UTCDateTime(), nullable=True),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.Column('tm_update', UTCDateTime(), nullable=True),
    sa.Column('tm_delete', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calls_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_groupcall_id'), ['groupcall_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_tm_create'), ['tm_create'], unique=False)

    op.create_table('flows',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('persist', sa.Boolean(), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.Column('tm_update', UTCDateTime(), nullable=True),
    sa.Column('tm_delete', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flows_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flows_tm_create'), ['tm_create'], unique=False)

    op.create_table('groupcalls',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('flow_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.JSON(), nullable=False),
    sa.Column('destinations', sa.JSON(), nullable=False),
    sa.Column('ring_method', sa.String(length=16), nullable=False),
    sa.Column('answer_method', sa.String(length=16), nullable=False),
    sa.Column('answer_call_id', sa.String(length=36), nullable=False),
    sa.Column('call_ids', sa.JSON(), nullable=False),
    sa.Column('tm_create', UTCDateTime(), nullable=False),
    sa.Column('tm_update', UTCDateTime(), nullable=True),
    sa.Column('tm_delete', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('groupcalls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_groupcalls_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_groupcalls_tm_create'), ['tm_create'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('groupcalls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_groupcalls_tm_create'))
        batch_op.drop_index(batch_op.f('ix_groupcalls_customer_id'))

    op.drop_table('groupcalls')
    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flows_tm_create'))
        batch_op.drop_index(batch_op.f('ix_flows_customer_id'))

    op.drop_table('flows')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_tm_create'))
        batch_op.drop_index(batch_op.f('ix_calls_status'))
        batch_op.drop_index(batch_op.f('ix_calls_groupcall_id'))
        batch_op.drop_index(batch_op.f('ix_calls_customer_id'))

    op.drop_table('calls')
    with op.batch_alter_table('activeflows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activeflows_tm_create'))
        batch_op.drop_index(batch_op.f('ix_activeflows_reference_id'))
        batch_op.drop_index(batch_op.f('ix_activeflows_customer_id'))

    op.drop_table('activeflows')
    with op.batch_alter_table('sip_bindings', schema=None) as batch_op:
        batch_op.drop_index('uq_sip_bindings_aor_contact')
        batch_op.drop_index(batch_op.f('ix_sip_bindings_extension_id'))
        batch_op.drop_index(batch_op.f('ix_sip_bindings_expires_at'))
        batch_op.drop_index(batch_op.f('ix_sip_bindings_aor'))

    op.drop_table('sip_bindings')
