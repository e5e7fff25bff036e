"""Ingest bookkeeping: each agent's last accepted batch counter and the start of
the last sequence hole already reported (so a chain.gap is recorded once).

Revision ID: 0003_ingest
Revises: 0002_console_search
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_ingest"
down_revision = "0002_console_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as b:
        b.add_column(sa.Column("last_batch", sa.BigInteger, nullable=False, server_default="0"))
        b.add_column(sa.Column("hole_reported", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("agents") as b:
        b.drop_column("hole_reported")
        b.drop_column("last_batch")
