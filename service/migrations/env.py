"""Alembic environment: runs migrations against the URL set by baomi.service.db.upgrade."""
from alembic import context

from baomi.service import db

config = context.config


def run() -> None:
    engine = db.make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=db.metadata, render_as_batch=True)
        with context.begin_transaction():
            # several collectors may start at once on one PostgreSQL: serialise upgrades
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7265303)")
            context.run_migrations()
    engine.dispose()


run()
