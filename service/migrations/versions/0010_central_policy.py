"""central policy: the security administrator's sealed signing key, signed policy
documents, and when each agent applied the policy it runs

Revision ID: 0010_central_policy
Revises: 0009_collector_secrets
"""
from alembic import op
import sqlalchemy as sa

revision = "0010_central_policy"
down_revision = "0009_collector_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("public_key", sa.String(128), nullable=False),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "policy_documents",
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("scope", sa.String(64), nullable=False, server_default="all"),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(128), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("policy_applied_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("policy_applied_at")
    op.drop_table("policy_documents")
    op.drop_table("signing_keys")
