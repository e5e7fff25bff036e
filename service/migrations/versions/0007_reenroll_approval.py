"""enrollment: an enrolled key enrolls again only after the sysadmin approved it
(`baomi-collector agents approve`), service/enroll.py

Revision ID: 0007_reenroll_approval
Revises: 0006_incremental_advance
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_reenroll_approval"
down_revision = "0006_incremental_advance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("reenroll_approved_by", sa.String(length=128)))
    op.create_index("ix_agents_host_name", "agents", ["host_name"])
    op.create_index("ix_events_received", "events", ["received_at", "pk"])


def downgrade() -> None:
    op.drop_index("ix_events_received", "events")
    op.drop_index("ix_agents_host_name", "agents")
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("reenroll_approved_by")
