"""console: server-side sessions, and indexes for the console's filters

Revision ID: 0002_console
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_console'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'console_sessions',
        sa.Column('token_hash', sa.String(length=64), nullable=False),  # sha256 of the cookie value
        sa.Column('user_name', sa.String(length=128), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_console_sessions_user', ['user_name'], unique=False)
    # Hourly counts for the dashboard, kept up to date incrementally by pk (service/console/rollup.py)
    op.create_table(
        'console_rollup',
        sa.Column('bucket', sa.String(length=13), nullable=False),   # 'YYYY-MM-DD HH', UTC, of the event time
        sa.Column('dim', sa.String(length=8), nullable=False),       # severity | kind | host | user
        sa.Column('value', sa.String(length=255), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('bucket', 'dim', 'value'),
    )
    op.create_table(
        'console_rollup_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('last_pk', sa.BigInteger(), nullable=False),       # events up to this pk are counted
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute("INSERT INTO console_rollup_state (id, last_pk) VALUES (1, 0)")
    # The event list filters by these and sorts by (time, pk); the audit trail by agent_id.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_user_time', ['user_name', 'time'], unique=False)
        batch_op.create_index('ix_events_level_time', ['level', 'time'], unique=False)
        batch_op.create_index('ix_events_action_time', ['action', 'time'], unique=False)
        batch_op.create_index('ix_events_agent_time', ['agent_id', 'time'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_agent_time')
        batch_op.drop_index('ix_events_action_time')
        batch_op.drop_index('ix_events_level_time')
        batch_op.drop_index('ix_events_user_time')
    op.drop_table('console_rollup_state')
    op.drop_table('console_rollup')
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_console_sessions_user')
    op.drop_table('console_sessions')
