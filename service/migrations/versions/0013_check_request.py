"""the self-inspection report the console asked a host for (立即自查): its id, when and by whom,
on the agent's row until the report arrives

Revision ID: 0013_check_request
Revises: 0012_approvals
"""
from alembic import op
import sqlalchemy as sa

revision = "0013_check_request"
down_revision = "0012_approvals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("check_request", sa.String(32)))
        batch_op.add_column(sa.Column("check_requested_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("check_requested_by", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("check_requested_by")
        batch_op.drop_column("check_requested_at")
        batch_op.drop_column("check_request")
