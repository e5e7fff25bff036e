"""collector-wide secrets kept in the database (the console's login-form key), so every
collector process sharing the database accepts what another one made (console/auth.py)

Revision ID: 0009_collector_secrets
Revises: 0008_token_host
"""
from alembic import op
import sqlalchemy as sa

revision = "0009_collector_secrets"
down_revision = "0008_token_host"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collector_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("collector_secrets")
