"""initial schema

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('agents',
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.String(length=128), nullable=False),
    sa.Column('host_name', sa.String(length=255), nullable=False),
    sa.Column('host_class', sa.String(length=32), server_default='unclassified', nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seq', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('last_hash', sa.String(length=64), server_default='', nullable=False),
    sa.Column('agent_version', sa.String(length=64), nullable=True),
    sa.Column('policy_version', sa.String(length=64), nullable=True),
    sa.Column('spool_depth', sa.BigInteger(), nullable=True),
    sa.Column('oldest_unsent_s', sa.Float(), nullable=True),
    sa.Column('online', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.PrimaryKeyConstraint('agent_id')
    )
    op.create_table('enroll_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=True),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_table('events',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('host_name', sa.String(length=255), nullable=True),
    sa.Column('user_name', sa.String(length=255), nullable=True),
    sa.Column('level', sa.String(length=16), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=True),
    sa.Column('file_name', sa.String(length=1024), nullable=True),
    sa.Column('file_sha256', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='new', nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('agent_id', 'seq', name='uq_events_agent_seq'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_host_time', ['host_name', 'time'], unique=False)
        batch_op.create_index('ix_events_kind_time', ['kind', 'time'], unique=False)
        batch_op.create_index('ix_events_severity_time', ['severity', 'time'], unique=False)
        batch_op.create_index('ix_events_sha256', ['file_sha256'], unique=False)
        batch_op.create_index('ix_events_time', ['time'], unique=False)

    op.create_table('triage',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_pk', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('user_name', sa.String(length=128), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('triage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_triage_event_pk'), ['event_pk'], unique=False)

    op.create_table('users',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )



def downgrade() -> None:

    op.drop_table('users')
    with op.batch_alter_table('triage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_triage_event_pk'))

    op.drop_table('triage')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_time')
        batch_op.drop_index('ix_events_sha256')
        batch_op.drop_index('ix_events_severity_time')
        batch_op.drop_index('ix_events_kind_time')
        batch_op.drop_index('ix_events_host_time')

    op.drop_table('events')
    op.drop_table('enroll_tokens')
    op.drop_table('agents')

