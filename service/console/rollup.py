"""Hourly event counts for the dashboard, so a month of millions of events is
summed from a few thousand rows instead of scanned.

The rollup advances by primary key: each refresh counts the events with
pk > last_pk (by the hour of their event time, so late deliveries from hosts
that were offline land in the right hour) and moves last_pk forward in the same
transaction. It only takes events received more than GRACE_S ago, so an insert
transaction that got its pk earlier but commits a little later is not skipped.
Readers add the not-yet-counted events live (see queries.dashboard).
"""
from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, DBAPIError

from .. import db
from ..own_events import COLLECTOR_AGENT_ID

log = logging.getLogger(__name__)
GRACE_S = 60
MAX_ROWS_PER_REFRESH = 2_000_000
_md = sa.MetaData()
rollup = sa.Table(
    "console_rollup", _md,
    sa.Column("bucket", sa.String(13), primary_key=True),
    sa.Column("dim", sa.String(8), primary_key=True),
    sa.Column("value", sa.String(255), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)
state = sa.Table(
    "console_rollup_state", _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("last_pk", sa.BigInteger, nullable=False),
)
E = db.events
DIMS = {"severity": E.c.severity, "kind": E.c.kind, "host": E.c.host_name, "user": E.c.user_name}


def hour_expr(dialect: str) -> sa.ColumnElement[str]:
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", E.c.time), "YYYY-MM-DD HH24")
    return sa.func.substr(E.c.time, 1, 13)  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)


def last_pk(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(state.c.last_pk).where(state.c.id == 1)).scalar() or 0)


def refresh(engine: sa.Engine, now: dt.datetime | None = None) -> int:
    """Count the events that arrived since the last refresh; returns the new last_pk.
    Two collectors refreshing at once: one wins, the other gives up (its readers count live)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff = now - dt.timedelta(seconds=GRACE_S)
    try:
        with engine.begin() as conn:
            dialect = conn.dialect.name
            if dialect == "postgresql":
                start = conn.execute(sa.select(state.c.last_pk).where(state.c.id == 1)
                                     .with_for_update(skip_locked=True)).scalar()
                if start is None:
                    return last_pk(conn)   # another collector is refreshing
            else:
                conn.exec_driver_sql("UPDATE console_rollup_state SET last_pk = last_pk WHERE id = 1")  # take the write lock
                start = last_pk(conn)
            # the highest pk such that everything up to it was received before the cutoff
            newer = sa.select(E.c.pk, E.c.received_at).where(E.c.pk > start).order_by(E.c.pk) \
                .limit(MAX_ROWS_PER_REFRESH).subquery()
            first_late = conn.execute(sa.select(sa.func.min(newer.c.pk)).where(newer.c.received_at > cutoff)).scalar()
            top = conn.execute(sa.select(sa.func.max(newer.c.pk))).scalar()
            if top is None:
                return start
            end = first_late - 1 if first_late is not None else top
            if end <= start:
                return start
            b = hour_expr(dialect).label("b")
            counts: list[dict] = []
            for dim, col in DIMS.items():
                stmt = (sa.select(b, col, sa.func.count()).where(E.c.pk > start, E.c.pk <= end,
                                                                 E.c.agent_id != COLLECTOR_AGENT_ID,
                                                                 col.is_not(None))
                        .group_by(b, col))
                counts += [{"bucket": bk, "dim": dim, "value": str(v)[:255], "n": n} for bk, v, n in conn.execute(stmt)]
            ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(rollup)
            upsert = ins.on_conflict_do_update(index_elements=["bucket", "dim", "value"],
                                               set_={"n": rollup.c.n + ins.excluded.n})
            for i in range(0, len(counts), 5000):
                conn.execute(upsert, counts[i:i + 5000])
            conn.execute(state.update().where(state.c.id == 1).values(last_pk=end))
            return end
    except (OperationalError, DBAPIError) as exc:  # busy: someone else is writing; count live this time
        log.info("dashboard rollup refresh skipped: %s", exc)
        with engine.connect() as conn:
            return last_pk(conn)


def sums(conn: sa.Connection, dim: str, first: str, last: str) -> list[tuple[str, str, int]]:
    """(bucket, value, n) of the rollup for buckets first <= bucket < last."""
    stmt = sa.select(rollup.c.bucket, rollup.c.value, rollup.c.n).where(
        rollup.c.dim == dim, rollup.c.bucket >= first, rollup.c.bucket < last)
    return [(bk, v, n) for bk, v, n in conn.execute(stmt)]
