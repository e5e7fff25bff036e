"""console: an index on (kind, agent_id, seq), so the latest event of a kind for every host
(the self-inspection report, the discovery pass, the heartbeat) is found from the index

Revision ID: 0011_latest_per_host
Revises: 0010_central_policy
"""
from alembic import op

revision = "0011_latest_per_host"
down_revision = "0010_central_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_kind_agent_seq", "events", ["kind", "agent_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_events_kind_agent_seq", table_name="events")
