"""Copy approvals (审批) on the agent (docs/media.md "审批"): users' requests, and the
security administrator's signed decisions this host holds.

- A user whose copy was blocked runs `baomi-session request FILE --reason ...` (or
  `baomi-agent approvals request`). The client opens the file itself and passes the
  open descriptor over the request socket (SCM_RIGHTS), so the agent reads only what
  that user can read; the kernel names the user (SO_PEERCRED). The agent hashes the
  content, finds this user's blocked copy of it in the spool, and records
  `approval.requested` with that copy's file, level, evidence and target medium.
- Decisions arrive in the collector's answers to batches, signed with the security
  administrator's key (baomi.common.approvals). Verified ones are kept in
  `state_dir/approvals.json`, the user is notified, and the highest seq held goes into
  the heartbeat (`approvals_seq`) so the collector stops resending them.
- Enforcement asks `claim()` before it blocks a copy: a valid grant for this content,
  medium and user turns the block into `file.copied` with `details.approval_id`, and
  `approval.used` counts the copy (copies are counted here, on the host that makes them).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import stat
import threading
import time
import uuid
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Mapping

from baomi.common import approvals as rules
from baomi.common.central import Forged
from baomi.common.fsutil import atomic_write, sha256_fd
from baomi.common.levels import Level

from .context import AgentContext
from .localsock import LocalServer
from .screenlock.protocol import peer_credentials

log = logging.getLogger(__name__)
STORE = "approvals.json"
MAX_LINE = 8 * 1024
READ_TIMEOUT_S = 10.0
KEEP_AFTER_EXPIRY = dt.timedelta(days=7)
MAX_HELD = 2000


class RequestRefused(ValueError):
    """Why a user's request was not recorded (said to the user as is)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Approvals:
    def __init__(self, ctx: AgentContext):
        self.ctx = ctx
        self.path = Path(ctx.config.state_dir) / STORE
        self._lock = threading.Lock()
        self._recent: dict[int, deque[float]] = defaultdict(deque)
        self.docs: dict[str, dict[str, Any]] = {}      # approval id -> envelope
        self.used: dict[str, int] = {}
        self.requests: dict[str, dict[str, Any]] = {}  # this host's requests: id -> summary
        self.seq = 0
        self._load()

    # -- the store -------------------------------------------------------------------
    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("%s unreadable (%s): no approvals held", self.path, exc)
            return
        key = self._key()
        for env in (data.get("documents") or {}).values():
            try:  # re-verified: a copy altered on this host is dropped
                doc = rules.verify(env, key, self.ctx.identity.agent_id) if key else None
            except Forged as exc:
                log.warning("a kept approval does not verify (%s): dropped", exc)
                continue
            if doc is not None:
                self.docs[doc["id"]] = env
        self.used = {k: int(v) for k, v in (data.get("used") or {}).items() if k in self.docs}
        self.requests = dict(data.get("requests") or {})
        self.seq = max([int(data.get("seq") or 0)] + [e["document"]["seq"] for e in self.docs.values()])
        self.ctx.status["approvals_seq"] = self.seq

    def _save(self) -> None:
        data = {"documents": self.docs, "used": self.used, "requests": self.requests, "seq": self.seq}
        atomic_write(self.path, json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8"), mode=0o600)

    def _prune(self, now: dt.datetime) -> None:
        for aid, env in list(self.docs.items()):
            exp = rules.parse(env["document"].get("expires_at")) or rules.parse(env["document"]["issued_at"])
            if exp is not None and exp + KEEP_AFTER_EXPIRY < now:
                del self.docs[aid]
                self.used.pop(aid, None)
        for rid, req in sorted(self.requests.items(), key=lambda kv: kv[1].get("time", ""))[:-MAX_HELD]:
            del self.requests[rid]

    def _key(self) -> Any:
        from .central import policy_of
        return policy_of(self.ctx).key

    # -- decisions from the collector --------------------------------------------------
    def receive(self, envelopes: Any) -> int:
        """Keep the verified decisions of a batch answer; returns how many were new."""
        key = self._key()
        if key is None or not isinstance(envelopes, list):
            return 0
        fresh = []
        with self._lock:
            for env in envelopes[:100]:
                try:
                    doc = rules.verify(env, key, self.ctx.identity.agent_id)
                except Forged as exc:
                    d = env.get("document") if isinstance(env, dict) else None
                    self.ctx.record("policy.forged", severity="high", details={
                        "source": "collector", "document": "approval", "reason": str(exc),
                        "approval_id": str(d.get("id"))[:80] if isinstance(d, dict) else None})
                    continue
                held = self.docs.get(doc["id"])
                self.seq = max(self.seq, doc["seq"])
                if held is not None and held["signature"] == env["signature"]:
                    continue
                self.docs[doc["id"]] = env
                req = self.requests.get(doc["id"])
                if req is not None:
                    req["status"] = doc["decision"]
                fresh.append(doc)
            if fresh or self.seq != self.ctx.status.get("approvals_seq"):
                self._prune(_now())
                self._save()
            self.ctx.status["approvals_seq"] = self.seq
        for doc in fresh:
            log.info("approval %s %s by %s", doc["id"], doc["decision"], doc["decided_by"])
            self._tell_user(doc)
        return len(fresh)

    def _tell_user(self, doc: Mapping[str, Any]) -> None:
        uid = doc.get("user", {}).get("uid")
        if not isinstance(uid, int):
            return
        from . import notify
        req = self.requests.get(doc["id"], {})
        lang = notify.user_lang(uid)
        zh = notify.language(lang) == "zh"
        copies = doc.get("copies")
        summary, body = notify.render(
            f"approval_{doc['decision']}", lang, name=req.get("name") or doc["sha256"][:12],
            medium=req.get("medium") or ("个人介质" if zh else "a personal medium"), by=doc.get("decided_by"),
            expires=self._local_time(doc.get("expires_at")),
            copies=(f",限 {copies} 次" if zh else f", {copies} cop{'y' if copies == 1 else 'ies'}") if copies else "",
            comment=doc.get("comment") or "")
        notify.deliver_async(uid, summary, body, "normal", self.ctx.notifiers)

    @staticmethod
    def _local_time(stamp: Any) -> str:
        t = rules.parse(stamp)
        return t.astimezone().strftime("%Y-%m-%d %H:%M %Z") if t else "?"

    # -- enforcement ------------------------------------------------------------------
    def claim(self, sha256: str, uid: int | None, medium: Mapping[str, Any]) -> str | None:
        """The id of a valid grant covering this copy, counted as used; None when none does."""
        if not self.docs:
            return None
        skew = self.ctx.config.approvals.clock_skew_s
        now = _now()
        with self._lock:
            for aid, env in self.docs.items():
                doc = env["document"]
                if doc["sha256"] != sha256:
                    continue
                used = self.used.get(aid, 0)
                if rules.void_reason(doc, sha256=sha256, uid=uid, medium=medium, now=now, skew_s=skew,
                                     used=used) is None:
                    self.used[aid] = used + 1
                    self._save()
                    break
            else:
                return None
        copies = doc.get("copies")
        self.ctx.record("approval.used", severity="medium", details={
            "approval_id": aid, "used": used + 1, "copies": copies,
            "remaining": None if copies is None else copies - used - 1, "expires_at": doc["expires_at"],
            "sha256": sha256, "decided_by": doc["decided_by"]})
        return aid

    # -- requests from users ------------------------------------------------------------
    def request(self, uid: int, fd: int, reason: str) -> dict[str, Any]:
        """Record `approval.requested` for this user's blocked copy of the content behind `fd`."""
        if self._key() is None:
            raise RequestRefused("this host has no central key ([central] public_key): approvals cannot reach it")
        reason = reason.strip()
        if not reason:
            raise RequestRefused("a reason is required (--reason)")
        if len(reason) > rules.MAX_REASON:
            raise RequestRefused(f"the reason is longer than {rules.MAX_REASON} characters")
        self._throttle(uid)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RequestRefused("not a regular file")
        sha = sha256_fd(fd)
        blocked = self.ctx.spool.latest_blocked(sha, uid)
        if blocked is None:
            raise RequestRefused("no blocked copy of this file by you is on record on this host: "
                                 "copy it first; a request names a copy that was blocked")
        rid = "ap-" + uuid.uuid4().hex[:20]
        file, medium = dict(blocked.get("file") or {}), dict(blocked.get("medium") or {})
        spec = rules.medium_spec(medium)
        self.ctx.record("approval.requested", severity="medium", user=blocked.get("user"), file=file,
                        medium=medium, details={"request_id": rid, "reason": reason,
                                                "blocked_event_id": blocked["id"], "target": spec})
        label = medium.get("fs_label") or medium.get("registry_id") or medium.get("product") or ""
        with self._lock:
            self.requests[rid] = {"uid": uid, "name": file.get("name"), "sha256": sha, "medium": label,
                                  "level": file.get("level"), "time": rules.stamp(_now()), "status": "pending"}
            self._prune(_now())
            self._save()
        level = Level.parse(file["level"]) if file.get("level") else None
        return {"ok": True, "request_id": rid, "name": file.get("name"), "medium": label,
                "level": level.id if level else None, "level_zh": level.zh if level else None}

    def _throttle(self, uid: int) -> None:
        now, per_hour = time.monotonic(), self.ctx.config.approvals.per_user_per_hour
        with self._lock:
            recent = self._recent[uid]
            while recent and recent[0] < now - 3600:
                recent.popleft()
            if len(recent) >= per_hour:
                raise RequestRefused(f"too many requests: at most {per_hour} an hour")
            recent.append(now)

    def listing(self, uid: int) -> list[dict[str, Any]]:
        """This user's requests (root: everyone's) and what became of them."""
        with self._lock:
            out = []
            for rid, req in sorted(self.requests.items(), key=lambda kv: kv[1].get("time", "")):
                if uid != 0 and req.get("uid") != uid:
                    continue
                env = self.docs.get(rid)
                doc = env["document"] if env else {}
                out.append({"request_id": rid, **req, "expires_at": doc.get("expires_at"),
                            "copies": doc.get("copies"), "used": self.used.get(rid, 0),
                            "comment": doc.get("comment")})
            return out


def approvals_of(ctx: AgentContext) -> Approvals:
    a = getattr(ctx, "approvals", None)
    if a is None:
        a = ctx.approvals = Approvals(ctx)  # type: ignore[attr-defined]
    return a


# -- the request socket: one JSON line in (with the file's descriptor), one out -------------
def _read_request(conn: socket.socket) -> tuple[dict[str, Any], int | None]:
    conn.settimeout(READ_TIMEOUT_S)
    data, fds, _flags, _addr = socket.recv_fds(conn, MAX_LINE, 1)
    while not data.endswith(b"\n") and len(data) < MAX_LINE:
        more = conn.recv(MAX_LINE - len(data))
        if not more:
            break
        data += more
    fd = fds[0] if fds else None
    try:
        msg = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        if fd is not None:
            os.close(fd)
        raise RequestRefused("not a request (one JSON line expected)") from None
    if not isinstance(msg, dict):
        if fd is not None:
            os.close(fd)
        raise RequestRefused("not a request (one JSON object expected)")
    return msg, fd


def serve_request(approvals: Approvals, conn: socket.socket) -> None:
    uid = peer_credentials(conn).uid
    fd = None
    try:
        try:
            msg, fd = _read_request(conn)
            if msg.get("type") == "list":
                answer: dict[str, Any] = {"ok": True, "requests": approvals.listing(uid)}
            elif msg.get("type") == "request":
                if fd is None:
                    raise RequestRefused("the file's descriptor did not come with the request")
                answer = approvals.request(uid, fd, str(msg.get("reason") or ""))
            else:
                raise RequestRefused(f"unknown request type {str(msg.get('type'))[:40]!r}")
        except RequestRefused as exc:
            answer = {"ok": False, "error": str(exc)}
        except OSError as exc:
            answer = {"ok": False, "error": f"the file could not be read: {exc.strerror or exc}"}
        conn.sendall(json.dumps(answer, ensure_ascii=False).encode("utf-8") + b"\n")
    finally:
        if fd is not None:
            os.close(fd)


class ApprovalsComponent:
    name = "approvals"

    def __init__(self, ctx: AgentContext):
        self.ctx = ctx
        self.approvals = approvals_of(ctx)
        self.server = LocalServer(ctx.config.approvals.socket, lambda c: serve_request(self.approvals, c),
                                  ctx.stopping, 0o666, "baomi-approvals")

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


# -- the client side (run by the user) -----------------------------------------------------
def ask(socket_path: str | Path, msg: dict[str, Any], fd: int | None = None, timeout: float = 600.0) -> dict:
    """Send one request to the agent and return its answer; OSError when it is not running."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)   # a large file takes a while to hash
        s.connect(str(socket_path))
        line = json.dumps(msg, ensure_ascii=False).encode("utf-8") + b"\n"
        if fd is not None:
            socket.send_fds(s, [line], [fd])
        else:
            s.sendall(line)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    try:
        return json.loads(buf.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {"ok": False, "error": "the agent's answer was not understood"}
