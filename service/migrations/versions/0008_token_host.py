"""enrollment tokens may name the host they enroll: the sysadmin, not the agent, then
sets the enrolled host name and class (service/enroll.py)

Revision ID: 0008_token_host
Revises: 0007_reenroll_approval
"""
from alembic import op
import sqlalchemy as sa

revision = "0008_token_host"
down_revision = "0007_reenroll_approval"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enroll_tokens") as batch_op:
        batch_op.add_column(sa.Column("host_name", sa.String(length=255)))
        batch_op.add_column(sa.Column("host_class", sa.String(length=16)))


def downgrade() -> None:
    with op.batch_alter_table("enroll_tokens") as batch_op:
        batch_op.drop_column("host_class")
        batch_op.drop_column("host_name")
