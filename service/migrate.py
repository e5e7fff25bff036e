"""`baomi-collector db migrate-to URL`: copy a collector's data (normally its SQLite
file) into PostgreSQL, so several collectors can share it.

Idempotent: events are matched by their id and (agent, seq), so a second run (say,
after the source collector was stopped, to take what arrived during the first) copies
only what is missing. The source gets an identity (collector_secrets 'instance') and
the target remembers it ('migrated_from'); a non-empty target that is not a copy of
this source is refused unless forced. Event primary keys are the target's own; triage
rows follow their event by event id, and the dashboard's hourly rollup is recounted.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from . import db
from .console import auth, rollup

INSTANCE, MIGRATED_FROM = "instance", "migrated_from"
BATCH = 2000
# natural-key tables, copied row for row (the source is authoritative for the rows it has)
PLAIN = (db.enroll_tokens, db.users, db.announced_gaps, db.login_throttle, auth.sessions)
LIVE = (db.agents, db.events, db.users, db.enroll_tokens)  # rows here make a target "in use"


class MigrateRefused(Exception):
    pass


@dataclass
class Copied:
    events: int = 0       # newly stored in the target
    skipped: int = 0      # already there (a previous run)
    agents: int = 0
    triage: int = 0


def _marker(conn: sa.Connection, name: str) -> bytes | None:
    T = db.collector_secrets
    value = conn.execute(sa.select(T.c.value).where(T.c.name == name)).scalar()
    return bytes(value) if value is not None else None


def _in_use(conn: sa.Connection) -> bool:
    return any(conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() for t in LIVE)


def check_target(target: sa.Engine, source_id: bytes, force: bool) -> None:
    """Refuse a target holding data that is not an earlier copy of this source (unless forced)."""
    with target.begin() as conn:
        came_from = _marker(conn, MIGRATED_FROM)
        if came_from != source_id and _in_use(conn) and not force:
            why = "a copy of another collector" if came_from else "not empty and not a copy of this collector"
            raise MigrateRefused(f"the target database is {why}; pass --force to merge into it anyway")
        T = db.collector_secrets
        stmt = postgresql.insert(T).values(name=MIGRATED_FROM, value=source_id, created_at=auth.now())
        conn.execute(stmt.on_conflict_do_update(index_elements=[T.c.name], set_={"value": source_id}))


Where = Callable[[postgresql.Insert], sa.ColumnElement[bool]]


def _rows(result: sa.Result) -> list[dict]:
    # SQLite hands back naive datetimes; they are UTC, and PostgreSQL must not read them as local time
    return [{k: _utc(v) if isinstance(v, dt.datetime) else v for k, v in r._mapping.items()} for r in result]


def _upsert(conn: sa.Connection, table: sa.Table, rows: list[dict], where: Where | None = None) -> None:
    if not rows:
        return
    stmt = postgresql.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    set_ = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=set_, where=where(stmt) if where else None),
                 rows)


def _copy_tables(source: sa.Connection, target: sa.Connection) -> int:
    for table in PLAIN:
        _upsert(target, table, _rows(source.execute(sa.select(table))))
    S = db.collector_secrets
    _upsert(target, S, _rows(source.execute(sa.select(S).where(S.c.name.not_in((INSTANCE, MIGRATED_FROM))))))
    A = db.agents
    rows = _rows(source.execute(sa.select(A)))
    # never move a chain watermark back: agents may already deliver to the target
    _upsert(target, A, rows, where=lambda stmt: A.c.last_seq <= stmt.excluded.last_seq)
    return len(rows)


def _copy_events(source: sa.Connection, target: sa.Engine, total: int, progress: Callable[[str], None],
                 copied: Copied) -> None:
    E = db.events
    cols = [c for c in E.columns if c.name != "pk"]  # the target numbers its own rows
    done, after = 0, 0
    while True:
        rows = _rows(source.execute(sa.select(E.c.pk, *cols).where(E.c.pk > after).order_by(E.c.pk).limit(BATCH)))
        if not rows:
            break
        after = rows[-1]["pk"]
        with target.begin() as conn:
            before = conn.execute(sa.select(sa.func.count()).select_from(E)).scalar_one()
            # both unique keys (event_id; agent_id, seq) make a row already there a no-op
            conn.execute(postgresql.insert(E).on_conflict_do_nothing(),
                         [{c.name: r[c.name] for c in cols} for r in rows])
            new = conn.execute(sa.select(sa.func.count()).select_from(E)).scalar_one() - before
        copied.events += new
        copied.skipped += len(rows) - new
        done += len(rows)
        progress(f"events: {done}/{total} read, {copied.events} copied, {copied.skipped} already there")


def _copy_triage(source: sa.Connection, target: sa.Connection) -> int:
    T, E = db.triage, db.events
    src = source.execute(sa.select(T, E.c.event_id).join(E, E.c.pk == T.c.event_pk)).all()
    if not src:
        return 0
    ids = {r.event_id for r in src}
    pk_of = dict(target.execute(sa.select(E.c.event_id, E.c.pk).where(E.c.event_id.in_(ids))).all())
    have = {(r.event_pk, r.status, r.user_name, _utc(r.time)) for r in target.execute(sa.select(T))}
    rows = [{"event_pk": pk_of[r.event_id], "status": r.status, "comment": r.comment, "user_name": r.user_name,
             "time": r.time} for r in src
            if r.event_id in pk_of and (pk_of[r.event_id], r.status, r.user_name, _utc(r.time)) not in have]
    if rows:
        target.execute(T.insert(), rows)
    return len(rows)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def migrate(source_url: str, target_url: str, *, force: bool = False,
            progress: Callable[[str], None] = print) -> Copied:
    """Copy everything from the collector database at source_url into the PostgreSQL
    database at target_url (brought to the newest schema first)."""
    if not sa.engine.make_url(target_url).drivername.startswith("postgresql"):
        raise MigrateRefused("the target must be a PostgreSQL URL (postgresql://user@host/db)")
    if sa.engine.make_url(source_url) == sa.engine.make_url(target_url):
        raise MigrateRefused("the target is the source database")
    db.upgrade(source_url)  # the same schema on both sides
    db.upgrade(target_url)
    src_engine, dst_engine = db.make_engine(source_url), db.make_engine(target_url)
    try:
        source_id = auth.shared_secret(src_engine, INSTANCE)
        check_target(dst_engine, source_id, force)
        copied = Copied()
        with src_engine.connect() as source:
            with dst_engine.begin() as target:
                copied.agents = _copy_tables(source, target)
            progress(f"accounts, tokens, sessions and {copied.agents} agent(s) copied")
            total = source.execute(sa.select(sa.func.count()).select_from(db.events)).scalar_one()
            _copy_events(source, dst_engine, total, progress, copied)
            with dst_engine.begin() as target:
                copied.triage = _copy_triage(source, target)
                # the hourly counts are by the target's own pks: recount them from the start
                target.execute(rollup.rollup.delete())
                target.execute(rollup.state.update().where(rollup.state.c.id == 1).values(last_pk=0))
        return copied
    finally:
        src_engine.dispose()
        dst_engine.dispose()
