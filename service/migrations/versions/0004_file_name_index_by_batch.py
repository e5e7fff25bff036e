"""SQLite: file names enter the trigram index once per inserted batch (db.insert_events)
instead of through a per-row trigger, which made FTS5 write an index segment per row.

Revision ID: 0004_fts_batch
Revises: 0003_ingest
"""
from alembic import op

revision = "0004_fts_batch"
down_revision = "0003_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS events_file_name_ai")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE TRIGGER events_file_name_ai AFTER INSERT ON events BEGIN "
                   "INSERT INTO events_file_name(rowid, file_name) VALUES (new.pk, new.file_name); END")
