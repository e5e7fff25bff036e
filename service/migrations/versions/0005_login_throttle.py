"""console: failed-login counters per source address, shared by every collector
process on the database (console/auth.py)

Revision ID: 0005_login_throttle
Revises: 0004_fts_batch
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_login_throttle"
down_revision = "0004_fts_batch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("source", sa.String(length=64), nullable=False),      # the client's address
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
