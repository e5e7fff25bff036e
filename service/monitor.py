"""Hosts whose agents stop reporting are flagged offline (a host.offline event
and agents.online = false); ingest flags them online again when they return."""
from __future__ import annotations

import datetime as dt
import logging
import threading

import sqlalchemy as sa

from . import db
from .own_events import insert_collector_event, now

log = logging.getLogger("baomi.collector.monitor")


def check_offline(engine: sa.Engine, offline_after_s: float) -> list[str]:
    """Flag every online agent silent for longer than offline_after_s; returns their host names."""
    cutoff = now() - dt.timedelta(seconds=offline_after_s)
    flagged = []
    with engine.begin() as conn:
        rows = conn.execute(sa.select(db.agents.c.agent_id, db.agents.c.host_name, db.agents.c.last_seen)
                            .where(db.agents.c.online.is_(True))).all()
        for r in rows:
            seen = r.last_seen if r.last_seen is None or r.last_seen.tzinfo else r.last_seen.replace(tzinfo=dt.timezone.utc)
            if seen is not None and seen >= cutoff:
                continue
            done = conn.execute(db.agents.update().where(db.agents.c.agent_id == r.agent_id)
                                .where(db.agents.c.online.is_(True)).values(online=False))
            if done.rowcount:  # another collector process may have flagged it already
                insert_collector_event(conn, "host.offline", severity="medium", host_name=r.host_name,
                                       details={"agent_id": r.agent_id, "last_seen": seen.isoformat() if seen else None,
                                                "offline_after_s": offline_after_s})
                flagged.append(r.host_name)
    return flagged


class Monitor:
    def __init__(self, engine: sa.Engine, offline_after_s: float):
        self.engine, self.offline_after_s = engine, offline_after_s
        self.interval = max(1.0, min(30.0, offline_after_s / 5))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="baomi-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for host in check_offline(self.engine, self.offline_after_s):
                    log.warning("host %s is offline", host)
            except Exception:  # the database may be briefly away; try again next round
                log.exception("offline check failed")
