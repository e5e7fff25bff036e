"""console: indexed substring search on file names (SQLite FTS5 trigram, PostgreSQL pg_trgm)

Revision ID: 0002_console_search
Revises: 0002_console
"""
import logging

from alembic import op
import sqlalchemy as sa


revision = '0002_console_search'
down_revision = '0002_console'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# SQLite: an external-content FTS5 table over events.file_name, kept in step by triggers.
# (A later migration that rebuilds `events` in batch mode must re-create these triggers.)
SQLITE_UP = [
    "CREATE VIRTUAL TABLE events_file_name USING fts5(file_name, content='events', content_rowid='pk', "
    "tokenize='trigram')",
    "CREATE TRIGGER events_file_name_ai AFTER INSERT ON events BEGIN "
    "INSERT INTO events_file_name(rowid, file_name) VALUES (new.pk, new.file_name); END",
    "CREATE TRIGGER events_file_name_ad AFTER DELETE ON events BEGIN "
    "INSERT INTO events_file_name(events_file_name, rowid, file_name) VALUES ('delete', old.pk, old.file_name); END",
    "CREATE TRIGGER events_file_name_au AFTER UPDATE OF file_name ON events BEGIN "
    "INSERT INTO events_file_name(events_file_name, rowid, file_name) VALUES ('delete', old.pk, old.file_name); "
    "INSERT INTO events_file_name(rowid, file_name) VALUES (new.pk, new.file_name); END",
    "INSERT INTO events_file_name(events_file_name) VALUES ('rebuild')",
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for stmt in SQLITE_UP:
            op.execute(stmt)
    elif bind.dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+); without it, search still works, unindexed
        try:
            with bind.begin_nested():
                bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except sa.exc.DBAPIError as exc:
            log.warning("pg_trgm not available (%s): file-name search will scan", exc.orig)
            return
        op.create_index('ix_events_file_name_trgm', 'events', ['file_name'], postgresql_using='gin',
                        postgresql_ops={'file_name': 'gin_trgm_ops'})


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("events_file_name_au", "events_file_name_ad", "events_file_name_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS events_file_name")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_events_file_name_trgm")
