"""how each host protects what it judges, from its latest heartbeat: how many media run in a
weaker mode than held, and the scan workers' state (service/protection.py), for the host list

Revision ID: 0017_host_protection
Revises: 0016_site_rules
"""
from alembic import op
import sqlalchemy as sa

revision = "0017_host_protection"
down_revision = "0016_site_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("weaker_media", sa.BigInteger))
        batch_op.add_column(sa.Column("scan_workers", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("scan_workers")
        batch_op.drop_column("weaker_media")
