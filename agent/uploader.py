"""The uploader: sends unsent spool events to the collector, signed, in order.

One thread. Each round it takes the oldest unacknowledged events (at most
[collector] batch_size and batch_bytes), signs the exact body bytes with the
agent's Ed25519 key and POSTs them to /api/v1/events. Only what the collector
acknowledges ("acked": every seq up to it is stored) is marked sent. Failures
back off exponentially with jitter; the wire protocol is docs/delivery.md.

UploaderComponent also applies the spool's size cap, prunes old acknowledged
rows, retries events held in memory on a full disk, and records heartbeats —
so it runs even when no collector is configured (events then stay local).
"""
from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx

from .config import CollectorSection
from .context import AgentContext
from .enroll import EnrollError, describe_transport_error, enroll, http_client, is_enrolled
from baomi.common.events import utcnow
from .heartbeat import beat
from .agent_key import Identity
from .spool import Spool

log = logging.getLogger(__name__)
# one line per request would drown the agent's own log; failures are logged here instead
logging.getLogger("httpx").setLevel(logging.WARNING)

BATCH_KEY = "batch"  # last batch number used, in the spool meta table
IDLE_POLL_S = 2.0  # look at the spool this often even when nothing in-process was recorded
ENVELOPE_BYTES = 512  # room for agent_id, batch and sent_at around the events


@dataclass
class Outcome:
    """What one round did: sent (and how far acked), nothing to send, or wait `delay` seconds."""
    status: str  # "sent" | "idle" | "retry"
    acked: int = 0
    delay: float = 0.0
    reason: str = ""


class Backoff:
    """Jittered exponential backoff: min, 2·min, 4·min ... up to max, each ×[0.5, 1.0]."""

    def __init__(self, lo: float, hi: float, rng: random.Random | None = None):
        self.lo, self.hi, self.failures = lo, hi, 0
        self.rng = rng or random.Random()

    def next(self, at_least: float = 0.0) -> float:
        base = min(self.hi, self.lo * (2 ** min(self.failures, 30)))
        self.failures += 1
        return max(at_least, base * (0.5 + self.rng.random() / 2))

    def reset(self) -> None:
        self.failures = 0


def retry_after(resp: httpx.Response) -> float:
    value = resp.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0


class Uploader:
    def __init__(self, cfg: CollectorSection, identity: Identity, spool: Spool, host: dict[str, Any],
                 record: Callable[..., Any], client: httpx.Client | None = None):
        self.cfg, self.identity, self.spool, self.host = cfg, identity, spool, host
        self.record = record  # ctx.record: events about delivery itself
        self.client = client
        self.batch_size = cfg.batch_size
        self._reported: set[str] = set()  # problems already recorded as an event (once each)
        # highest seq sent in this run; events beyond an unacknowledged hole are still sent on
        self.cursor = 0
        self.announced: Any = None   # the latest central policy version the collector named
        self.announced_rules: Any = None   # and the latest central rules version
        self.decisions: Any = None   # signed approval decisions the collector's answer carried
        self.check_requested: Any = None  # a self-inspection report the collector asked for (立即自查)
        self.registry_announced: Any = None   # the latest central media registry version named

    # -- building a batch --------------------------------------------------
    def next_events(self) -> list[dict[str, Any]]:
        limit = max(1, self.cfg.batch_bytes - ENVELOPE_BYTES)
        events = self.spool.unacked(self.batch_size, max_bytes=limit, after=self.cursor)
        if not events and self.cursor:
            # everything was sent but not all acknowledged: send again from the oldest unacked
            self.cursor = 0
            return []
        if not events:
            return events
        # a seq range dropped by the spool is explained by an agent.gap event recorded after it;
        # send that gap along so the collector never sees an unexplained hole
        have = {e["seq"] for e in events}
        top = self.batch_top = max(have)
        for gap in self.spool.pending_gaps(covering_upto=top):
            if gap["seq"] not in have and gap["details"].get("first_seq", top + 1) <= top:
                events.append(gap)
                have.add(gap["seq"])
        return events

    def body(self, events: list[dict[str, Any]], batch: int) -> bytes:
        return json.dumps({"agent_id": self.identity.agent_id, "batch": batch, "sent_at": utcnow(),
                           "events": events}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    # -- one round ---------------------------------------------------------
    def send_once(self) -> Outcome:
        if not self.cfg.url:
            return Outcome("idle")
        events = self.next_events()
        if not events:
            if self.spool.depth():
                return Outcome("retry", reason="collector has not acknowledged every event sent; sending again")
            return Outcome("idle")
        batch = int(self.spool.get_meta(BATCH_KEY, "0")) + 1
        # persisted before sending: a batch number is never reused, even across a crash
        self.spool.set_meta(BATCH_KEY, str(batch))
        raw = self.body(events, batch)
        headers = {"Content-Type": "application/json", "X-Baomi-Agent": self.identity.agent_id,
                   "X-Baomi-Signature": base64.b64encode(self.identity.sign(raw)).decode("ascii")}
        try:
            resp = self._client().post("/api/v1/events", content=raw, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome("retry", reason=describe_transport_error(exc, self.cfg.url))
        return self.handle(resp, events)

    def handle(self, resp: httpx.Response, events: list[dict[str, Any]]) -> Outcome:
        code = resp.status_code
        try:
            answer = resp.json()
        except ValueError:
            answer = {}
        error = str(answer.get("error") or resp.text[:200]) if isinstance(answer, dict) else resp.text[:200]
        if code == 200:
            acked = int(answer.get("acked", 0))
            self.announced = answer.get("policy_version")
            self.registry_announced = answer.get("media_registry_version")
            self.announced_rules = answer.get("rules_version")
            if answer.get("approvals"):
                self.decisions = answer["approvals"]
            if answer.get("check_requested"):
                self.check_requested = answer["check_requested"]
            if acked:
                self.spool.ack(acked)
            self._reported.clear()
            if self.batch_size < self.cfg.batch_size:  # grow back after a 413
                self.batch_size = min(self.cfg.batch_size, self.batch_size * 2)
            top = getattr(self, "batch_top", 0) or max(e["seq"] for e in events)
            self.cursor = top if acked < top else 0
            return Outcome("sent", acked=acked, reason=f"{len(events)} event(s), acked {acked}/{top}")
        if code == 409 and isinstance(answer.get("last_batch"), int):
            self.spool.set_meta(BATCH_KEY, str(answer["last_batch"]))
            return Outcome("sent", reason=f"batch counter resynchronised to {answer['last_batch']}")
        if code == 401:
            if self.cfg.token:
                try:
                    enroll(self.cfg, self.identity, self.spool, self.host, client=self._client())
                    return Outcome("sent", reason="enrolled again after 401")
                except EnrollError as exc:
                    error = f"{error}; enrolling again failed: {exc}"
            self._report_once("unknown_agent", error, code)
            return Outcome("retry", reason=f"collector does not know this agent: {error}")
        if code == 413:
            if self.batch_size > 1:
                self.batch_size = max(1, self.batch_size // 2)
                return Outcome("sent", reason=f"batch too large; now {self.batch_size} event(s)")
            self._report_once("too_large", error, code)
            return Outcome("retry", reason=f"a single event is larger than the collector accepts: {error}")
        bad = answer.get("seq") if isinstance(answer, dict) else None
        if code in (413, 422) and isinstance(bad, int) and any(e["seq"] == bad for e in events):
            # the collector named the one event it cannot take: set it aside, the rest flows
            self.spool.reject(bad, code, error)
            return Outcome("sent", reason=f"event seq {bad} refused by the collector ({code}): {error}")
        if code in (400, 403, 422):
            self._report_once(f"rejected_{code}", error, code)
            return Outcome("retry", reason=f"collector rejected the batch ({code}): {error}")
        delay = retry_after(resp) if code in (429, 503) else 0.0
        return Outcome("retry", delay=delay, reason=f"collector answered {code}: {error}")

    def _report_once(self, key: str, error: str, code: int) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        log.error("collector rejected delivery (%d): %s", code, error)
        self.record("agent.delivery_rejected", severity="high",
                    details={"status": code, "error": error[:500], "url": self.cfg.url})

    def _client(self) -> httpx.Client:
        if self.client is None:
            self.client = http_client(self.cfg)
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class UploaderComponent:
    """Delivery, heartbeats and spool upkeep in one background thread."""
    name = "uploader"

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx
        cfg = ctx.config
        self.uploader = Uploader(cfg.collector, ctx.identity, ctx.spool, ctx.host, ctx.record)
        self.backoff = Backoff(cfg.collector.backoff_min_s, cfg.collector.backoff_max_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error = ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="baomi-uploader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.ctx.spool.appended.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ctx.config.collector.timeout_s + 5)
        self.uploader.close()

    def _enroll_if_needed(self) -> bool:
        cfg = self.ctx.config.collector
        if not cfg.url or is_enrolled(self.ctx.spool, cfg.url) or not cfg.token:
            return True
        try:
            enroll(cfg, self.ctx.identity, self.ctx.spool, self.ctx.host, client=self.uploader._client())
            log.info("enrolled with %s as %s", cfg.url, self.ctx.identity.agent_id)
            return True
        except EnrollError as exc:
            self._note(str(exc))
            if not exc.retry:
                self.uploader._report_once("enroll", str(exc), 401)
            return False

    def _central_policy(self) -> None:
        """Fetch, verify and apply a newer signed policy the collector's answer named."""
        announced, self.uploader.announced = self.uploader.announced, None
        if announced is None:
            return
        from .central import policy_of
        try:
            outcome = policy_of(self.ctx).offer(announced, self.uploader._client())
        except httpx.HTTPError as exc:
            self._note(f"central policy not fetched: {describe_transport_error(exc, self.ctx.config.collector.url)}")
            return
        if outcome == "apply":
            beat(self.ctx)   # the collector learns the new version at once

    def _media_registry(self) -> None:
        """Fetch, verify and hand on a newer signed media registry the collector's answer named."""
        announced, self.uploader.registry_announced = self.uploader.registry_announced, None
        if announced is None:
            return
        from .media.central import registry_of
        try:
            outcome = registry_of(self.ctx).offer(announced, self.uploader._client())
        except httpx.HTTPError as exc:
            self._note(f"central media registry not fetched: "
                       f"{describe_transport_error(exc, self.ctx.config.collector.url)}")
            return
        if outcome == "apply":
            beat(self.ctx)   # the collector learns the version this host holds at once

    def _central_rules(self) -> None:
        """Fetch, verify and keep a newer signed rules document the collector's answer named."""
        announced, self.uploader.announced_rules = self.uploader.announced_rules, None
        if announced is None:
            return
        from .central import rules_of
        try:
            rules_of(self.ctx).offer(announced, self.uploader._client())
        except httpx.HTTPError as exc:
            self._note(f"central rules not fetched: {describe_transport_error(exc, self.ctx.config.collector.url)}")

    def _approvals(self) -> None:
        """Keep the signed approval decisions the collector's answer carried."""
        decisions, self.uploader.decisions = self.uploader.decisions, None
        if not decisions:
            return
        from .approvals import approvals_of
        if approvals_of(self.ctx).receive(decisions):
            beat(self.ctx)   # says the highest one held, so the collector stops resending them

    def _check_request(self) -> None:
        """Hand a self-inspection the collector asked for to the check thread (never run here:
        the check reads logs and probes, and delivery must not wait for it)."""
        asked, self.uploader.check_requested = self.uploader.check_requested, None
        if asked:
            from .selfcheck import selfcheck_of
            selfcheck_of(self.ctx).request(asked)

    def _note(self, reason: str) -> None:
        if reason != self.last_error:
            log.warning("delivery: %s", reason)
        self.last_error = reason

    def _run(self) -> None:
        spool, cfg = self.ctx.spool, self.ctx.config
        next_beat = time.monotonic()  # first heartbeat right away: the collector sees the host now
        next_prune = 0.0
        wake_at = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_beat:
                    beat(self.ctx)
                    next_beat = now + cfg.collector.heartbeat_s
                if now >= next_prune:
                    spool.housekeep(cfg.spool.acked_retention_s)
                    next_prune = now + 60.0
                if now >= wake_at:
                    spool.appended.clear()  # cleared before reading: an append after this wakes us
                    if not self._enroll_if_needed():
                        wake_at = now + self.backoff.next()
                    else:
                        out = self.uploader.send_once()
                        if out.status == "sent":
                            self.backoff.reset()
                            self.last_error = ""
                            self._central_policy()
                            self._media_registry()
                            self._central_rules()
                            self._approvals()
                            self._check_request()
                            continue  # more may be waiting
                        if out.status == "retry":
                            self._note(out.reason)
                            wake_at = now + self.backoff.next(out.delay)
            except Exception as exc:  # the delivery thread must outlive any one failure
                log.exception("uploader round failed")
                self._note(f"{type(exc).__name__}: {exc}")
                wake_at = time.monotonic() + self.backoff.next()
            now = time.monotonic()
            deadline = min(next_beat, next_prune)
            if wake_at > now:
                deadline = min(deadline, wake_at)
                self._stop.wait(max(0.0, deadline - now))
            else:
                # idle: sleep until an event is recorded in this process, the next heartbeat/prune,
                # or the next cheap look at the spool (other processes, e.g. CLI commands, append too)
                spool.appended.wait(max(0.0, min(deadline - now, IDLE_POLL_S)))
                if spool.overflowing:
                    spool.appended.wait(1.0)
