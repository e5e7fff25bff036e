"""host groups (e.g. 财务部) named by the system administrator and the hosts in each; the
membership is signed into the next central policy version (docs/policy.md "Scopes")

Revision ID: 0014_host_groups
Revises: 0013_check_request
"""
from alembic import op
import sqlalchemy as sa

revision = "0014_host_groups"
down_revision = "0013_check_request"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "host_groups",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "host_group_members",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_host_group_members_group", "host_group_members", ["group_name"])


def downgrade() -> None:
    op.drop_index("ix_host_group_members_group", "host_group_members")
    op.drop_table("host_group_members")
    op.drop_table("host_groups")
