"""copy approvals (审批): requests from agents, the security administrator's signed
decisions, and the highest decision each agent holds

Revision ID: 0012_approvals
Revises: 0011_latest_per_host
"""
from alembic import op
import sqlalchemy as sa

revision = "0012_approvals"
down_revision = "0011_latest_per_host"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("host_name", sa.String(255)),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_uid", sa.BigInteger),
        sa.Column("user_name", sa.String(255)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(1024)),
        sa.Column("level", sa.String(32)),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("medium", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("seq", sa.BigInteger, unique=True),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("copies", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("document", sa.Text),
        sa.Column("signature", sa.String(128)),
        sa.Column("used", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_approvals_agent_seq", "approvals", ["agent_id", "seq"])
    op.create_index("ix_approvals_status", "approvals", ["status", "requested_at"])
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("approvals_seq", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("approvals_seq")
    op.drop_index("ix_approvals_status", "approvals")
    op.drop_index("ix_approvals_agent_seq", "approvals")
    op.drop_table("approvals")
