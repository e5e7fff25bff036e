"""The collector's store: SQLAlchemy Core tables, engine creation, Alembic upgrade.

SQLite (a file in state_dir) by default; PostgreSQL when database_url names one.
The schema is changed only through migrations in service/migrations/versions/.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite

from baomi.common.fsutil import private_dir

metadata = sa.MetaData()

agents = sa.Table(
    "agents", metadata,
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("public_key", sa.String(128), nullable=False),  # raw Ed25519, hex
    sa.Column("host_name", sa.String(255), nullable=False),
    sa.Column("host_class", sa.String(32), nullable=False, server_default="unclassified"),
    sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True)),
    sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),  # highest contiguous stored
    sa.Column("last_hash", sa.String(64), nullable=False, server_default=""),
    sa.Column("agent_version", sa.String(64)),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("spool_depth", sa.BigInteger),
    sa.Column("oldest_unsent_s", sa.Float),
    sa.Column("online", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("last_batch", sa.BigInteger, nullable=False, server_default="0"),   # replay guard
    sa.Column("hole_reported", sa.BigInteger, nullable=False, server_default="0"),  # no longer written
    sa.Column("max_seq", sa.BigInteger, nullable=False, server_default="0"),  # highest stored seq, agent.gap aside
    sa.Column("reenroll_approved_by", sa.String(128)),  # set by `agents approve`, used up by the next enrollment
    sa.Column("policy_applied_at", sa.DateTime(timezone=True)),  # when the agent applied policy_version (0010)
    sa.Column("approvals_seq", sa.BigInteger, nullable=False, server_default="0"),  # highest decision it holds (0012)
    # a self-inspection report the console asked for (立即自查), until the agent's check.report
    # names it; the batch answer carries the id (0013)
    sa.Column("check_request", sa.String(32)),
    sa.Column("check_requested_at", sa.DateTime(timezone=True)),
    sa.Column("check_requested_by", sa.String(128)),
    sa.Column("media_registry_version", sa.BigInteger, nullable=False, server_default="0"),  # registry held (0015)
    sa.Column("rules_version", sa.BigInteger),   # the central rules version it runs (0016)
    # its latest heartbeat: media not held, scan workers' state (service/protection.py, 0017)
    sa.Column("weaker_media", sa.BigInteger),
    sa.Column("scan_workers", sa.String(16)),
)
sa.Index("ix_agents_host_name", agents.c.host_name)

announced_gaps = sa.Table(  # agent.gap events above the watermark: the drops they announce (migration 0006)
    "announced_gaps", metadata,
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

enroll_tokens = sa.Table(
    "enroll_tokens", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256 of the token; the token is never stored
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128)),
    sa.Column("used_at", sa.DateTime(timezone=True)),
    sa.Column("used_by", sa.String(64)),
    # set by the sysadmin when the token is made for one host: the enrolled name and class
    sa.Column("host_name", sa.String(255)),
    sa.Column("host_class", sa.String(16)),
)

events = sa.Table(
    "events", metadata,
    sa.Column("pk", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("agent_id", sa.String(64), nullable=False),  # "collector" for the console's own audit events
    sa.Column("seq", sa.BigInteger),                         # null for collector-made events
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("host_name", sa.String(255)),
    sa.Column("user_name", sa.String(255)),
    sa.Column("level", sa.String(16)),
    sa.Column("action", sa.String(16)),
    sa.Column("file_name", sa.String(1024)),
    sa.Column("file_sha256", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False, server_default="new"),  # triage: new/investigating/closed
    sa.Column("body", sa.Text, nullable=False),  # the event as the agent signed it (JSON)
    sa.UniqueConstraint("agent_id", "seq", name="uq_events_agent_seq"),
)
sa.Index("ix_events_time", events.c.time)
sa.Index("ix_events_received", events.c.received_at, events.c.pk)
sa.Index("ix_events_kind_time", events.c.kind, events.c.time)
sa.Index("ix_events_host_time", events.c.host_name, events.c.time)
sa.Index("ix_events_severity_time", events.c.severity, events.c.time)
sa.Index("ix_events_sha256", events.c.file_sha256)
# the latest event of a kind per host: the console's host page and dashboard (migration 0011)
sa.Index("ix_events_kind_agent_seq", events.c.kind, events.c.agent_id, events.c.seq)

users = sa.Table(
    "users", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),  # sysadmin | secadmin | auditor
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
)

login_throttle = sa.Table(  # failed console logins per source address (migration 0005)
    "login_throttle", metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
)

collector_secrets = sa.Table(  # secrets every collector process on the database shares (migration 0009)
    "collector_secrets", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

triage = sa.Table(
    "triage", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_pk", sa.BigInteger, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("user_name", sa.String(128), nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
)

signing_keys = sa.Table(  # the security administrator's signing key, sealed under its passphrase (0010)
    "signing_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("public_key", sa.String(128), nullable=False),   # raw Ed25519, hex
    sa.Column("sealed", sa.Text, nullable=False),              # scrypt + AES-256-GCM (service/central.py)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
)

policy_documents = sa.Table(  # signed central policy documents, one row per version (0010)
    "policy_documents", metadata,
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("scope", sa.String(64), nullable=False, server_default="all"),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_by", sa.String(128), nullable=False),
    sa.Column("document", sa.Text, nullable=False),            # the signed document (JSON)
    sa.Column("signature", sa.String(128), nullable=False),    # base64 Ed25519 over its canonical JSON
)

media_registry_documents = sa.Table(  # the signed central media registry, one row per version (0015)
    "media_registry_documents", metadata,
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_by", sa.String(128), nullable=False),
    sa.Column("document", sa.Text, nullable=False),            # the signed document (JSON): every registration
    sa.Column("signature", sa.String(128), nullable=False),    # base64 Ed25519 over its canonical JSON
)

rules_documents = sa.Table(  # signed central rules documents, one row per version (0016)
    "rules_documents", metadata,
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_by", sa.String(128), nullable=False),
    sa.Column("document", sa.Text, nullable=False),            # the signed document (JSON): rule file, hashes
    sa.Column("signature", sa.String(128), nullable=False),    # base64 Ed25519 over its canonical JSON
)
approvals = sa.Table(  # copy approval requests (审批) and the signed decisions on them (0012)
    "approvals", metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),         # made by the agent
    sa.Column("agent_id", sa.String(64), nullable=False),
    sa.Column("host_name", sa.String(255)),
    sa.Column("event_id", sa.String(64), nullable=False),             # the approval.requested event
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("user_uid", sa.BigInteger),
    sa.Column("user_name", sa.String(255)),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("file_name", sa.String(1024)),
    sa.Column("level", sa.String(32)),
    sa.Column("target", sa.Text, nullable=False),                     # JSON: registry_id or binding
    sa.Column("medium", sa.Text, nullable=False),                     # JSON: the blocked copy's medium
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("seq", sa.BigInteger, unique=True),                     # delivery order, set when decided
    sa.Column("decided_by", sa.String(128)),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("copies", sa.Integer),
    sa.Column("comment", sa.Text),
    sa.Column("document", sa.Text),                                   # the signed decision (JSON)
    sa.Column("signature", sa.String(128)),
    sa.Column("used", sa.Integer, nullable=False, server_default="0"),  # approval.used events seen
)
sa.Index("ix_approvals_agent_seq", approvals.c.agent_id, approvals.c.seq)
sa.Index("ix_approvals_status", approvals.c.status, approvals.c.requested_at)

host_groups = sa.Table(  # host groups the system administrator names, e.g. 财务部 (0014)
    "host_groups", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
)

host_group_members = sa.Table(  # a host is in at most one group (0014); signed into the next policy version
    "host_group_members", metadata,
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("group_name", sa.String(64), nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("assigned_by", sa.String(128), nullable=False),
)
sa.Index("ix_host_group_members_group", host_group_members.c.group_name)

MIGRATIONS = Path(__file__).parent / "migrations"

# SQLite's trigram index on file names (migration 0002_console_search), filled by
# insert_events: FTS5 writes a new index segment for every statement, so a per-row
# trigger costs about ten times one INSERT ... SELECT over the rows of a batch.
FILE_NAME_INDEX = "events_file_name"


def insert_events(conn: sa.Connection, rows: list[dict[str, Any]], *, skip_duplicates: bool = False) -> None:
    """Insert rows into `events` (skip_duplicates: rows whose (agent, seq) is stored
    already are left out; an event_id stored already raises IntegrityError). Every insert into `events` goes through here,
    so SQLite's file-name index stays complete."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":  # pg_trgm's index is maintained by PostgreSQL itself
        stmt = postgresql.insert(events)  # psycopg pipelines executemany (faster here than multi-row VALUES)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["agent_id", "seq"]) if skip_duplicates else stmt,
                     rows)
        return
    stmt = sqlite.insert(events)
    stmt = stmt.on_conflict_do_nothing(index_elements=["agent_id", "seq"]) if skip_duplicates else stmt
    # RETURNING: the new pks, and SQLAlchemy sends multi-row VALUES pages (much faster on SQLite)
    pks = conn.execute(stmt.returning(events.c.pk), rows).scalars().all()
    if pks:  # our transaction holds SQLite's write lock: pks in this range are all ours
        # every row, NULL names too, as the FTS5 external-content contract (and 'delete') expects
        conn.execute(sa.text(f"INSERT INTO {FILE_NAME_INDEX}(rowid, file_name) SELECT pk, file_name FROM events "
                             "WHERE pk BETWEEN :lo AND :hi"),
                     {"lo": min(pks), "hi": max(pks)})


def default_sqlite_url(state_dir: Path) -> str:
    return f"sqlite:///{Path(state_dir).resolve() / 'collector.db'}"


SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def private_sqlite(url: str) -> Path | None:
    """For a SQLite file URL: its folder 0700 and the database (and any -wal/-shm/-journal) 0600,
    created so before SQLite opens it, whatever the umask. SQLite gives the -wal and -shm files
    it creates later the database file's mode."""
    u = sa.engine.make_url(url)
    if not u.drivername.startswith("sqlite") or not u.database or u.database == ":memory:" \
            or u.database.startswith("file:"):
        return None
    path = Path(u.database)
    if not path.parent.exists():  # an existing folder (the state dir, made 0700 by the commands) is left as is
        private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    _private_side_files(path)
    return path


def _private_side_files(path: Path) -> None:
    for suffix in SQLITE_SIDE_FILES[1:]:
        try:
            os.chmod(f"{path}{suffix}", 0o600)
        except FileNotFoundError:
            pass


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = private_sqlite(url)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa_event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL: readers never block the writer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            if path is not None:  # the -wal and -shm files exist now
                _private_side_files(path)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to the newest schema (Alembic `upgrade head`)."""
    from alembic import command
    from alembic.config import Config

    private_sqlite(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)
