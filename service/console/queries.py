"""What the console reads from the store: event filters, keyset pages, the
dashboard's aggregates, the hosts and the console's own audit trail.

Pure SQLAlchemy Core over the tables in baomi.service.db; works on SQLite and
PostgreSQL. Pages are keyset pages over (time, pk) so page 20,000 costs the
same as page 1; nothing here counts all rows of a big table.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any, Iterator, Mapping

import sqlalchemy as sa

from baomi.common import catalogue
from baomi.common.events import ACTIONS, SEVERITIES
from baomi.common.levels import LEVEL_IDS

from .. import db
from ..own_events import COLLECTOR_AGENT_ID
from ..protection import ENFORCE_MODES, MAX_MEDIA, is_weaker, scan_state
from .times import UTC, localise

E = db.events
PAGE_SIZE = 50
MAX_TEXT = 256          # longest accepted free-text filter value
TRIAGE_STATUSES = ("new", "investigating", "closed")
SORTS = ("time_desc", "time_asc")
_KIND_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_*]+)*\.?$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")

# Dashboard counters: what each tile counts.
BLOCKED_KINDS = catalogue.names("file.blocked")
DENIED_KINDS = catalogue.names("medium.denied")
SCREENLOCK_VIOLATION_KINDS = catalogue.names("screenlock.failed", "screenlock.enforced", "screenlock.settings_drift")
(PRINT_KIND,) = catalogue.names("print.job")  # blocked prints: print.job with action block


class FilterError(ValueError):
    """A filter value that cannot be used; `field` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """Stored times come back naive from SQLite and aware from PostgreSQL: make them aware UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


# Times a filter or a page position may name (both databases store these; a day more still fits).
TIME_MIN = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
TIME_MAX = dt.datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)
MAX_PK = 2**63 - 1


def in_range(field: str, value: dt.datetime) -> dt.datetime:
    if not TIME_MIN <= value <= TIME_MAX:
        raise FilterError(field, f"{value.isoformat()} is outside {TIME_MIN:%Y-%m-%d} .. {TIME_MAX:%Y-%m-%d} (UTC)")
    return value


def parse_time(field: str, text: str, tz: dt.tzinfo = UTC, next_day: bool = False) -> dt.datetime:
    """Accept `2026-11-22`, `2026-11-22T08:30`, `2026-11-22 08:30:00` or with Z/offset; without an
    offset the time is the office's wall clock (`tz`). `next_day`: a bare date means the midnight
    that ends it. Times outside TIME_MIN .. TIME_MAX are a FilterError, so every use of the value is safe."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if next_day and len(text.strip()) == 10:
            value += dt.timedelta(days=1)   # wall-clock days: right across a DST change too
        value = utc(value) if value.tzinfo else localise(value, tz)
    except ValueError:
        raise FilterError(field, f"{text[:40]!r} is not a date or time (expected e.g. 2026-11-22 or "
                                 "2026-11-22T08:30)") from None
    except OverflowError:  # an offset that moves year 1 or 9999 out of what datetime holds
        raise FilterError(field, f"{text[:40]!r} is outside {TIME_MIN:%Y-%m-%d} .. {TIME_MAX:%Y-%m-%d} (UTC)") \
            from None
    return in_range(field, value)  # type: ignore[arg-type]


@dataclass
class EventFilter:
    host: str = ""
    user: str = ""
    kind: str = ""
    level: str = ""
    action: str = ""
    severity: str = ""
    status: str = ""
    q: str = ""
    since: str = ""
    until: str = ""
    # the zone that since/until without an offset are read in (not a parameter)
    tz: dt.tzinfo = field(default=UTC, compare=False, metadata={"internal": True})

    def params(self) -> dict[str, str]:
        """The non-empty values, for links that keep the filter (pages, export)."""
        return {fd.name: getattr(self, fd.name) for fd in _PARAMS if getattr(self, fd.name)}


_PARAMS = tuple(fd for fd in fields(EventFilter) if not fd.metadata.get("internal"))


def parse_filter(params: Mapping[str, str], tz: dt.tzinfo = UTC) -> EventFilter:
    """Validate the query parameters of /events; raise FilterError naming the first bad one.
    Times without an offset are read in `tz`, the office's zone."""
    f = EventFilter(tz=tz)
    for fd in _PARAMS:
        value = params.get(fd.name, "") or ""
        value = value.strip()
        if len(value) > MAX_TEXT:
            raise FilterError(fd.name, f"too long ({len(value)} characters, at most {MAX_TEXT})")
        if "\x00" in value:
            raise FilterError(fd.name, "contains a NUL character")
        setattr(f, fd.name, value)
    checks = (("level", LEVEL_IDS), ("action", ACTIONS), ("severity", SEVERITIES), ("status", TRIAGE_STATUSES))
    for name, allowed in checks:
        value = getattr(f, name)
        if value and value not in allowed:
            raise FilterError(name, f"{value[:40]!r} is not one of {', '.join(allowed)}")
    if f.kind and not _KIND_RE.match(f.kind):
        raise FilterError("kind", f"{f.kind[:40]!r} is not an event kind (e.g. file.blocked, or file. for all file.*)")
    for name in ("since", "until"):
        if getattr(f, name):
            parse_time(name, getattr(f, name), tz, next_day=name == "until")
    return f


def needs_handling_condition() -> sa.ColumnElement[bool]:
    """SQL for catalogue.needs_handling: the events that get a triage state."""
    return sa.or_(E.c.kind.in_(catalogue.ACTIONABLE_KINDS), E.c.action.in_(catalogue.ACTIONABLE_ACTIONS),
                  E.c.severity.in_(catalogue.ACTIONABLE_SEVERITIES))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# inserts are indexed by db.insert_events; deletes and renames by these triggers
_FTS_TRIGGERS = ("events_file_name_ad", "events_file_name_au")
_fts_ready: dict[str, bool] = {}


def fts_ready(conn: sa.Connection) -> bool:
    """SQLite: is the trigram index on file names there, with all its triggers? (Checked once per database.)"""
    if conn.dialect.name != "sqlite":
        return False
    key = str(conn.engine.url)
    if key not in _fts_ready:
        names = set(conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE name = 'events_file_name' OR type = 'trigger'").scalars())
        _fts_ready[key] = {"events_file_name", *_FTS_TRIGGERS} <= names
    return _fts_ready[key]


_fts = sa.table("events_file_name", sa.column("rowid", sa.Integer), sa.column("events_file_name", sa.String))
FTS_SELECTIVE = 2000


def _phrase(q: str) -> str:
    return '"' + q.replace('"', '""') + '"'


def use_fts(conn: sa.Connection, f: EventFilter) -> bool:
    """Use the trigram index when it narrows the search: for a name found in thousands of rows,
    walking the time index until a page is full is quicker than collecting every match."""
    if not f.q or len(f.q) < 3 or _SHA256_RE.match(f.q) or not fts_ready(conn):
        return False
    probe = sa.select(_fts.c.rowid).where(_fts.c.events_file_name.op("MATCH")(_phrase(f.q))) \
        .limit(FTS_SELECTIVE).subquery()
    return conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar() < FTS_SELECTIVE


def event_conditions(f: EventFilter, fts: bool = False) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses for a validated filter. The console's own audit events are not shown among
    the events (they are in /audit, for the auditor only)."""
    conds: list[sa.ColumnElement[bool]] = [
        sa.not_(sa.and_(E.c.agent_id == COLLECTOR_AGENT_ID, E.c.kind.like("console.%"))),
    ]
    for name in ("host", "user"):
        value = getattr(f, name)
        if value:
            conds.append((E.c.host_name if name == "host" else E.c.user_name) == value)
    if f.kind:
        if f.kind.endswith(".") or f.kind.endswith(".*"):
            conds.append(E.c.kind.like(_like_escape(f.kind.rstrip("*")) + "%", escape="\\"))
        else:
            conds.append(E.c.kind == f.kind)
    for name in ("level", "action", "severity", "status"):
        value = getattr(f, name)
        if value:
            conds.append(getattr(E.c, name) == value)
    if f.status:  # only events that need handling have a triage state (a heartbeat is never "new")
        conds.append(needs_handling_condition())
    # times are the collector's own receive times: an agent cannot place its events in the past or future
    if f.since:
        conds.append(E.c.received_at >= parse_time("since", f.since, f.tz))
    if f.until:
        until = parse_time("until", f.until, f.tz, next_day=True)
        if len(f.until.strip()) == 10:  # a bare date means the whole day (in the office's zone)
            conds.append(E.c.received_at < until)
        else:
            conds.append(E.c.received_at <= until)
    if f.q:
        if _SHA256_RE.match(f.q):
            conds.append(E.c.file_sha256 == f.q.lower())
        else:
            conds.append(E.c.file_name.ilike("%" + _like_escape(f.q) + "%", escape="\\"))
            if fts and len(f.q) >= 3:  # the trigram index finds the candidates; LIKE above stays exact
                conds.append(E.c.pk.in_(sa.select(_fts.c.rowid).where(
                    _fts.c.events_file_name.op("MATCH")(_phrase(f.q)))))
    return conds


# ----------------------------------------------------------------- keyset pages

def encode_cursor(time: dt.datetime, pk: int) -> str:
    raw = f"{utc(time).isoformat()}|{pk}"  # type: ignore[union-attr]
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        stamp, pk_text = raw.split("|")
        t, pk = utc(dt.datetime.fromisoformat(stamp)), int(pk_text)
        if not 0 <= pk <= MAX_PK:
            raise ValueError("out of range")
        return t, pk  # type: ignore[return-value]
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise FilterError("cursor", "is not a page position from this console") from None


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


LIST_COLUMNS = (E.c.pk, E.c.event_id, E.c.agent_id, E.c.seq, E.c.time, E.c.received_at, E.c.kind, E.c.severity,
                E.c.host_name, E.c.user_name, E.c.level, E.c.action, E.c.file_name, E.c.file_sha256,
                E.c.status)


def _keyset(conds: list[Any], cursor: str | None, sort: str, limit: int,
            columns: tuple[Any, ...] = LIST_COLUMNS) -> sa.Select:
    key = sa.tuple_(E.c.received_at, E.c.pk)  # pages in the collector's receive order (index ix_events_received)
    if cursor:
        t, pk = decode_cursor(cursor)
        pos = sa.tuple_(sa.literal(t, E.c.received_at.type), sa.literal(pk, E.c.pk.type))
        conds = [*conds, key > pos if sort == "time_asc" else key < pos]
    order = (E.c.received_at.asc(), E.c.pk.asc()) if sort == "time_asc" else \
        (E.c.received_at.desc(), E.c.pk.desc())
    return sa.select(*columns).where(*conds).order_by(*order).limit(limit)


def _page(conn: sa.Connection, stmt: sa.Select, limit: int) -> Page:
    rows = [dict(r._mapping) for r in conn.execute(stmt)]
    for r in rows:
        r["time"], r["received_at"] = utc(r["time"]), utc(r["received_at"])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]["received_at"], rows[-1]["pk"]) if more and rows else None)


def skewed(row: Mapping[str, Any], max_skew_s: float) -> bool:
    """The agent's time differs from the collector's receive time by more than max_skew_s."""
    t, r = row.get("time"), row.get("received_at")
    return bool(t and r) and abs((utc(t) - utc(r)).total_seconds()) > max_skew_s  # type: ignore[operator]


def list_events(conn: sa.Connection, f: EventFilter, cursor: str | None = None, sort: str = "time_desc",
                limit: int = PAGE_SIZE) -> Page:
    if sort not in SORTS:
        raise FilterError("sort", f"{sort[:40]!r} is not one of {', '.join(SORTS)}")
    return _page(conn, _keyset(event_conditions(f, use_fts(conn, f)), cursor, sort, limit + 1), limit)


def iter_events(conn: sa.Connection, f: EventFilter, sort: str = "time_desc",
                chunk: int = 2000) -> Iterator[dict[str, Any]]:
    """Every matching event with its body, in keyset chunks (exports of any size in bounded memory)."""
    cursor = None
    while True:
        stmt = _keyset(event_conditions(f, use_fts(conn, f)), cursor, sort, chunk + 1, (*LIST_COLUMNS, E.c.body))
        page = _page(conn, stmt, chunk)
        yield from page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def get_event(conn: sa.Connection, pk: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(E).where(E.c.pk == pk)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["time"], out["received_at"] = utc(out["time"]), utc(out["received_at"])
    return out


def triage_history(conn: sa.Connection, pk: int) -> list[dict[str, Any]]:
    T = db.triage
    rows = conn.execute(sa.select(T).where(T.c.event_pk == pk).order_by(T.c.time.desc(), T.c.id.desc()))
    return [{**r._mapping, "time": utc(r.time)} for r in rows]


def audit_trail(conn: sa.Connection, user: str = "", cursor: str | None = None,
                limit: int = PAGE_SIZE) -> Page:
    """The console's own actions (agent_id "collector", kind console.* and the approval
    decisions approval.granted / approval.refused)."""
    conds: list[Any] = [E.c.agent_id == COLLECTOR_AGENT_ID,
                        sa.or_(E.c.kind.like("console.%"), E.c.kind.like("approval.%"))]
    if user:
        conds.append(E.c.user_name == user)
    return _page(conn, _keyset(conds, cursor, "time_desc", limit + 1, (*LIST_COLUMNS, E.c.body)), limit)


# ----------------------------------------------------------------- dashboard

PERIODS: dict[str, tuple[dt.timedelta, str]] = {   # name -> (length, bucket)
    "24h": (dt.timedelta(hours=24), "hour"),
    "7d": (dt.timedelta(days=7), "day"),
    "30d": (dt.timedelta(days=30), "day"),
}


def period_start(end: dt.datetime, period: str, tz: dt.tzinfo = UTC) -> dt.datetime:
    """Periods are whole buckets ending with the current one: 24 hours, or 7/30 days of the
    office's calendar (`tz`); returned in UTC."""
    length, bucket = PERIODS[period]
    if bucket == "hour":
        return end.replace(minute=0, second=0, microsecond=0) - (length - dt.timedelta(hours=1))
    today = end.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    return localise(today - (length - dt.timedelta(days=1)), tz)


def bucket_label(hour: dt.datetime, bucket: str, tz: dt.tzinfo = UTC) -> str:
    """The chart's label of the UTC hour starting at `hour`, on the office's clock: its hour
    ("2026-12-01 14:00") or its day ("2026-12-01"). (Zones off by half an hour put an hour
    on the day it starts in.)"""
    local = hour.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M") if bucket == "hour" else local.strftime("%Y-%m-%d")


def bucket_labels(start: dt.datetime, end: dt.datetime, bucket: str, tz: dt.tzinfo = UTC) -> list[str]:
    t, out = start, []
    while t <= end:
        label = bucket_label(t, bucket, tz)
        if not out or out[-1] != label:
            out.append(label)
        t += dt.timedelta(hours=1)
    return out


def dashboard(conn: sa.Connection, period: str, offline_after_s: int,
              now: dt.datetime | None = None, tz: dt.tzinfo = UTC) -> dict[str, Any]:
    """Counts for the chosen period: whole past hours come from the rollup (rollup.py), the
    current hour and anything not yet rolled up are counted live. The rollup's hours are UTC;
    they are put in the office's hours and days (`tz`) here."""
    from . import rollup
    if period not in PERIODS:
        raise FilterError("period", f"{period[:20]!r} is not one of {', '.join(PERIODS)}")
    _length, bucket = PERIODS[period]
    end = now or dt.datetime.now(dt.timezone.utc)
    start = period_start(end, period, tz)
    hour0 = end.replace(minute=0, second=0, microsecond=0)
    last = rollup.last_pk(conn)
    counts: dict[str, dict[tuple[str, str], int]] = {dim: {} for dim in rollup.DIMS}
    labels: dict[str, str] = {}   # UTC hour ("2026-12-01 06") -> the chart's label

    def add(dim: str, hour: str, value: Any, n: int) -> None:
        if value is None:
            return
        if hour not in labels:
            labels[hour] = bucket_label(dt.datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC), bucket, tz)
        key = (labels[hour], str(value))
        counts[dim][key] = counts[dim].get(key, 0) + n

    first, current = start.strftime("%Y-%m-%d %H"), hour0.strftime("%Y-%m-%d %H")
    for dim in rollup.DIMS:
        for hour, value, n in rollup.sums(conn, dim, first, current):
            add(dim, hour, value, n)
    h = rollup.hour_expr(conn.dialect.name).label("h")
    cols = (E.c.severity, E.c.kind, E.c.host_name, E.c.user_name)
    not_ours = E.c.agent_id != COLLECTOR_AGENT_ID
    live = (
        [E.c.time >= hour0, E.c.time <= end, not_ours],                     # the current hour
        [E.c.pk > last, E.c.time >= start, E.c.time < hour0, not_ours],      # not yet rolled up
    )
    for conds in live:
        for hour, sev, kind, host, user, n in conn.execute(
                sa.select(h, *cols, sa.func.count()).where(*conds).group_by(h, *cols)):
            for dim, value in zip(rollup.DIMS, (sev, kind, host, user)):
                add(dim, hour, value, n)

    series: dict[str, dict[str, int]] = {s: {} for s in SEVERITIES}
    for (label, sev), n in counts["severity"].items():
        if sev in series:
            series[sev][label] = n
    by_kind: dict[str, int] = {}
    for (_label, kind), n in counts["kind"].items():
        by_kind[kind] = by_kind.get(kind, 0) + n

    def top(dim: str) -> list[tuple[str, int]]:
        total: dict[str, int] = {}
        for (_label, value), n in counts[dim].items():
            total[value] = total.get(value, 0) + n
        return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:10]

    fleet = hosts(conn, offline_after_s, end)
    return {
        "period": period, "start": start, "end": end, "bucket": bucket,
        "labels": bucket_labels(start, end, bucket, tz), "series": series,
        "blocked": sum(by_kind.get(k, 0) for k in BLOCKED_KINDS),
        "denied": sum(by_kind.get(k, 0) for k in DENIED_KINDS),
        "screenlock": sum(by_kind.get(k, 0) for k in SCREENLOCK_VIOLATION_KINDS),
        "blocked_prints": blocked_prints(conn, start, end),
        "top_hosts": top("host"), "top_users": top("user"),
        "offline_hosts": [h for h in fleet if not h["online"]],
        # copies checked only after the write, or scan workers not fully confined: the security
        # administrator's list, who has no host list (hosts.view) to find them in
        "weaker_hosts": [h for h in fleet if h["weaker"]],
        "at_rest": at_rest_overview(conn),
    }


def blocked_prints(conn: sa.Connection, start: dt.datetime, end: dt.datetime) -> int:
    """Print jobs blocked in the period. Counted from the events (index ix_events_kind_time):
    the hourly rollup counts kinds, and a print job's outcome is its action."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(E).where(
        E.c.kind == PRINT_KIND, E.c.action == "block", E.c.time >= start, E.c.time <= end,
        E.c.agent_id != COLLECTOR_AGENT_ID)).scalar() or 0)


# kinds whose listed rows show facts from the stored body: the print jobs' printer and pages,
# the medium of every kind that carries one
MEDIUM_KINDS = frozenset(k for k, v in catalogue.KINDS.items() if "medium" in v.objects)


def medium_summary(medium: Any) -> dict[str, Any] | None:
    """What the event list shows of a medium: a label for people (the filesystem label, else
    vendor and product, else the serial) and its registry id, or that it is personal."""
    if not isinstance(medium, dict) or not medium:
        return None
    vendor = medium.get("vendor") or medium.get("manufacturer") or ""
    label = medium.get("fs_label") or medium.get("label") or " ".join(
        str(x) for x in (vendor, medium.get("product")) if x) or medium.get("serial") or ""
    registry_id = medium.get("registry_id") or None
    cls = medium.get("class") or ("registered" if registry_id else "personal")
    return {"label": str(label), "registry_id": registry_id, "class": cls,
            "serial": medium.get("serial") or "", "fs_uuid": medium.get("fs_uuid") or ""}


def add_body_facts(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Give a page of listed events what only their stored bodies say: the medium (label,
    registry id or personal) and, for print jobs, the printer and pages. One query for the
    page's few rows that have such facts; the list query itself never reads bodies."""
    for r in rows:
        r["medium"] = None
    pks = [r["pk"] for r in rows if r["kind"] == PRINT_KIND or r["kind"] in MEDIUM_KINDS]
    if not pks:
        return
    bodies = dict(conn.execute(sa.select(E.c.pk, E.c.body).where(E.c.pk.in_(pks))).all())
    for r in rows:
        if r["pk"] not in bodies:
            continue
        try:
            body = json.loads(bodies[r["pk"]])
        except ValueError:
            continue
        if not isinstance(body, dict):
            continue
        r["medium"] = medium_summary(body.get("medium"))
        if r["kind"] == PRINT_KIND:
            details = body.get("details") if isinstance(body.get("details"), dict) else {}
            printer = details.get("printer") if isinstance(details.get("printer"), dict) else {}
            r["printer"], r["pages"], r["copies"] = printer.get("name"), details.get("pages"), details.get("copies")


def hosts(conn: sa.Connection, offline_after_s: int, now: dt.datetime | None = None,
          agent_id: str | None = None) -> list[dict[str, Any]]:
    """Enrolled agents (or the one); a host is online when the collector marks it so and it was seen recently."""
    now = now or dt.datetime.now(dt.timezone.utc)
    A = db.agents
    out = []
    stmt = sa.select(A).order_by(A.c.host_name, A.c.agent_id)
    if agent_id is not None:
        stmt = stmt.where(A.c.agent_id == agent_id)
    for r in conn.execute(stmt):
        row = dict(r._mapping)
        row["last_seen"] = utc(row["last_seen"])
        row["enrolled_at"] = utc(row["enrolled_at"])
        row["policy_applied_at"] = utc(row.get("policy_applied_at"))
        row["check_requested_at"] = utc(row.get("check_requested_at"))
        fresh = row["last_seen"] is not None and (now - row["last_seen"]).total_seconds() <= offline_after_s
        row["online"] = bool(row["online"]) and fresh
        row["weaker"] = is_weaker(row.get("weaker_media"), row.get("scan_workers"))
        out.append(row)
    return out


# ----------------------------------------------------------------- one host: its latest report and posture

(REPORT_KIND, DISCOVERY_KIND, HEARTBEAT_KIND, MODE_KIND) = catalogue.names(
    "check.report", "discovery.finished", "agent.heartbeat", "enforce.mode")
MODE_EVENTS_READ = 200        # the host's latest enforce.mode events, to name those media
AT_REST_LEVELS = ("top_secret", "secret", "confidential", "internal")   # shown highest first
CLASSIFIED_AT_REST = ("top_secret", "secret", "confidential")           # what a host must not hold
CHECK_STATUSES = ("ok", "problem", "unknown")
HOST_COUNT_DAYS = 7
MAX_CHECKS = 32                      # an agent's report names ten sections; more is not believed


def latest_of_kind(conn: sa.Connection, kind: str, agent_id: str | None = None) -> dict[str, dict[str, Any]]:
    """The latest event of `kind` of every host (or of one), in one query through the index on
    (kind, agent_id, seq). Latest is the agent's own order (its highest seq), not the order of
    arrival: a report an offline host delivers late never hides a newer one."""
    inner = sa.select(E.c.agent_id, sa.func.max(E.c.seq).label("seq")).where(
        E.c.kind == kind, E.c.agent_id != COLLECTOR_AGENT_ID)
    if agent_id is not None:
        inner = inner.where(E.c.agent_id == agent_id)
    latest = inner.group_by(E.c.agent_id).subquery()
    stmt = sa.select(E.c.pk, E.c.agent_id, E.c.seq, E.c.time, E.c.received_at, E.c.severity, E.c.host_name,
                     E.c.body).join(latest, sa.and_(E.c.agent_id == latest.c.agent_id, E.c.seq == latest.c.seq))
    out = {}
    for r in conn.execute(stmt):
        row = dict(r._mapping)
        row["time"], row["received_at"] = utc(row["time"]), utc(row["received_at"])
        row["details"] = _details_of(row.pop("body"))
        out[row["agent_id"]] = row
    return out


def _details_of(body: str) -> dict[str, Any]:
    try:
        d = json.loads(body).get("details")
    except (ValueError, AttributeError):
        return {}
    return d if isinstance(d, dict) else {}


def _count(value: Any) -> int | None:
    """A count an agent reported, or None when it is not one (the body is the agent's word)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PK else None


def _text(value: Any, limit: int = 200) -> str:
    return value[:limit] if isinstance(value, str) else ""


def at_rest_of(details: Mapping[str, Any]) -> dict[str, int] | None:
    """discovery.finished's by-level counts of what the host holds at rest; None from an agent
    that does not report them."""
    held = details.get("at_rest")
    if not isinstance(held, dict):
        return None
    return {lv: _count(held.get(lv)) or 0 for lv in AT_REST_LEVELS}


def report_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """A check.report event as the host page shows it: result, counts, each section's status."""
    d = row["details"]
    checks = []
    for c in (d.get("checks") if isinstance(d.get("checks"), list) else [])[:MAX_CHECKS]:
        if not isinstance(c, dict):
            continue
        status = c.get("status") if c.get("status") in CHECK_STATUSES else "unknown"
        checks.append({"id": _text(c.get("id"), 64), "status": status, "applies": c.get("applies") is not False,
                       "findings": _count(c.get("findings")) or 0, "summary": _text(c.get("summary"))})
    counts = d.get("counts") if isinstance(d.get("counts"), dict) else {}
    fmt = d.get("format") if isinstance(d.get("format"), dict) else {}
    return {"pk": row["pk"], "seq": row["seq"], "time": row["time"], "received_at": row["received_at"],
            "severity": row["severity"], "result": d.get("result") if d.get("result") in ("pass", "fail") else None,
            "reasons": [_text(r) for r in (d.get("reasons") if isinstance(d.get("reasons"), list) else [])[:50]],
            "problems": sum(c["status"] == "problem" for c in checks),
            "unknown": sum(c["status"] == "unknown" for c in checks),
            "findings": _count(counts.get("findings")), "checks": checks,
            "version": _count(fmt.get("version")), "report_time": _text(d.get("report_time"), 64),
            "attached": isinstance(d.get("report"), dict)}


def posture_of(details: Mapping[str, Any]) -> dict[str, Any] | None:
    """The heartbeat's posture summary (classified hosts), or None."""
    p = details.get("posture")
    if not isinstance(p, dict):
        return None
    radios = p.get("radios") if isinstance(p.get("radios"), dict) else {}
    return {"network": _text(p.get("network"), 32) or "unknown",
            "reachable": [_text(x) for x in (p.get("reachable") if isinstance(p.get("reachable"), list) else [])[:10]],
            "outside": [_text(x) for x in (p.get("outside") if isinstance(p.get("outside"), list) else [])[:10]],
            "last_probe": _text(p.get("last_probe"), 64),
            "radios_blocked": _count(radios.get("blocked")), "radios_failed": _count(radios.get("failed")),
            "sharing": _count(p.get("sharing")),
            "passwords_readable": p.get("passwords_readable") if isinstance(p.get("passwords_readable"), bool)
            else None}


def protection_of(details: Mapping[str, Any], mode_events: Iterator[Mapping[str, Any]]) -> dict[str, Any]:
    """How the host enforces, from its latest heartbeat: each medium's mode (`held` /
    `after_write`), named by the latest `enforce.mode` event that carries its key (label, mount
    point, why it is not held), and how confined its scan workers run. All of it is the agent's
    word, bounded. `reported` is False for an agent that does not say (an older version)."""
    modes = details.get("enforcement") if isinstance(details.get("enforcement"), dict) else {}
    wanted = set(list(modes)[:MAX_MEDIA])
    named: dict[str, dict[str, Any]] = {}
    for body in mode_events:            # newest first: the first one of a key names it
        medium = body.get("medium") if isinstance(body.get("medium"), dict) else {}
        key = medium.get("key")
        if isinstance(key, str) and key in wanted and key not in named:
            named[key] = {"medium": medium, "details": body.get("details") if isinstance(body.get("details"), dict)
                          else {}}
            if len(named) == len(wanted):
                break
    media = []
    for key in list(modes)[:MAX_MEDIA]:
        mode = modes[key] if modes[key] in ENFORCE_MODES else "unknown"
        ev = named.get(key, {"medium": {}, "details": {}})
        m = ev["medium"]
        media.append({"key": _text(key, 128), "mode": mode, "label": _text(m.get("fs_label"), 128),
                      "devnode": _text(m.get("devnode"), 128), "mountpoint": _text(m.get("mountpoint"), 512),
                      "medium_class": _text(m.get("class"), 32),
                      "why": _text(ev["details"].get("why"), 300) if mode != "held" else ""})
    scan = details.get("scan_workers")
    scan = scan if isinstance(scan, dict) else {}
    workers = None if details.get("scan_workers") is None else {
        "state": scan_state(details), "user": _text(scan.get("user"), 64),
        "refused": [_text(r, 300) for r in (scan.get("refused") if isinstance(scan.get("refused"), list) else [])[:10]]}
    return {"media": media, "held": sum(m["mode"] == "held" for m in media),
            "weaker": sum(m["mode"] != "held" for m in media), "scan_workers": workers,
            "reported": "enforcement" in details, "workers_reported": "scan_workers" in details}


def _mode_events(conn: sa.Connection, agent_id: str) -> Iterator[dict[str, Any]]:
    rows = conn.execute(sa.select(E.c.body).where(E.c.kind == MODE_KIND, E.c.agent_id == agent_id)
                        .order_by(E.c.seq.desc()).limit(MODE_EVENTS_READ))
    for (body,) in rows:
        try:
            event = json.loads(body)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def host_detail(conn: sa.Connection, agent_id: str, offline_after_s: int,
                now: dt.datetime | None = None) -> dict[str, Any] | None:
    """One enrolled host: its health, latest self-inspection report, latest discovery pass (files
    held at rest by level), the posture of its latest heartbeat and its events of the last days by
    kind. None for a host that is not enrolled."""
    now = now or dt.datetime.now(dt.timezone.utc)
    host = next((h for h in hosts(conn, offline_after_s, now, agent_id=agent_id)), None)
    if host is None:
        return None
    report = latest_of_kind(conn, REPORT_KIND, agent_id).get(agent_id)
    discovery = latest_of_kind(conn, DISCOVERY_KIND, agent_id).get(agent_id)
    heartbeat = latest_of_kind(conn, HEARTBEAT_KIND, agent_id).get(agent_id)
    since = now - dt.timedelta(days=HOST_COUNT_DAYS)
    by_kind = conn.execute(sa.select(E.c.kind, sa.func.count()).where(
        E.c.host_name == host["host_name"], E.c.agent_id == agent_id, E.c.time >= since)
        .group_by(E.c.kind).order_by(sa.func.count().desc(), E.c.kind)).all()
    at_rest = at_rest_of(discovery["details"]) if discovery else None
    return {"host": host, "report": report_of(report) if report else None,
            "discovery": None if discovery is None else {
                "time": discovery["time"], "received_at": discovery["received_at"], "at_rest": at_rest,
                "classified": sum(at_rest[lv] for lv in CLASSIFIED_AT_REST) if at_rest else None,
                "files": _count(discovery["details"].get("files"))},
            "posture": posture_of(heartbeat["details"]) if heartbeat else None,
            "heartbeat_time": heartbeat["time"] if heartbeat else None,
            "protection": protection_of(heartbeat["details"], _mode_events(conn, agent_id)) if heartbeat else None,
            "counts": [(k, n) for k, n in by_kind], "counts_since": since, "count_days": HOST_COUNT_DAYS}


def at_rest_overview(conn: sa.Connection) -> dict[str, Any]:
    """Classified files held at rest across the hosts, from each host's latest discovery pass
    (one query): totals by level, how many hosts hold any, and the hosts that do, most first."""
    totals = {lv: 0 for lv in AT_REST_LEVELS}
    holding, reporting = [], 0
    for agent_id, row in latest_of_kind(conn, DISCOVERY_KIND).items():
        held = at_rest_of(row["details"])
        if held is None:
            continue
        reporting += 1
        for lv, n in held.items():
            totals[lv] += n
        classified = sum(held[lv] for lv in CLASSIFIED_AT_REST)
        if classified:
            holding.append({"agent_id": agent_id, "host_name": row["host_name"], "by_level": held,
                            "classified": classified, "time": row["time"]})
    holding.sort(key=lambda h: (-h["classified"], h["host_name"] or "", h["agent_id"]))
    return {"by_level": totals, "classified": sum(totals[lv] for lv in CLASSIFIED_AT_REST),
            "hosts_holding": len(holding), "hosts_reporting": reporting, "hosts": holding}
