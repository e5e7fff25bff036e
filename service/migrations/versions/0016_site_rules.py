"""central rules: the security administrator's signed rules documents (a site rule
file and fingerprints of registered documents, by hashes only), and the version each
agent runs

Revision ID: 0016_site_rules
Revises: 0015_media_registry
"""
from alembic import op
import sqlalchemy as sa

revision = "0016_site_rules"
down_revision = "0015_media_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules_documents",
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(128), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("rules_version", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("rules_version")
    op.drop_table("rules_documents")
