"""the central media registry: signed registry documents, one row per version, and the
version each agent holds

Revision ID: 0015_media_registry
Revises: 0014_host_groups
"""
from alembic import op
import sqlalchemy as sa

revision = "0015_media_registry"
down_revision = "0014_host_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_registry_documents",
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(128), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("media_registry_version", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("media_registry_version")
    op.drop_table("media_registry_documents")
