"""The gateway: serves every held medium from ONE FUSE filesystem in a dedicated
thread of the agent process.

Why one filesystem and not one process per medium: pyfuse3 allows a single FUSE
session per process, and the judge is an in-process callable of the agent (its
scanner, policy and quarantine); a process per medium would need an IPC protocol for
every verdict and its own crash handling. Each medium is a top-level directory of
the view (/run/baomi/view/<key>), bind-mounted onto the user's mount point.
"""
from __future__ import annotations

import errno
import logging
import os
import queue
import select
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import pyfuse3
import trio

from . import mounts
from .available import available
from .commit import remove_quietly
from .staging import CLOSED, COMMITTED, OPEN, StagingArea
from .types import COMMIT_PREFIX, FSTYPE, SUBTYPE, GatewayError, Judgement, Recovery, StagedFile
from .view import Medium, Staged, View

log = logging.getLogger("baomi.gateway")

_GONE_ERRNOS = {errno.EIO, errno.ENOTCONN, errno.ENODEV, errno.ENXIO, errno.ESHUTDOWN, errno.ESTALE}


class Gateway:
    def __init__(self, staging_dir: Path, cap_bytes: int, judge: Callable[[StagedFile], Judgement],
                 on_event: Callable[[str, dict], None], real_root: Path = Path("/run/baomi/real"),
                 view_root: Path | None = None, detach_timeout: float = 300.0, durable: bool = False,
                 fsync_commits: bool = False) -> None:
        self.staging_dir = Path(staging_dir)
        self.cap_bytes = cap_bytes
        self.judge = judge
        self.on_event = on_event
        self.real_root = Path(os.path.abspath(real_root))
        self.view_root = Path(os.path.abspath(view_root)) if view_root else self.real_root.parent / "view"
        self.detach_timeout = detach_timeout
        # off by default: the page cache outlives an agent crash, and a direct copy is not
        # synced at close either; fsync() by the writer always syncs its own file
        self.durable = durable              # fsync staged data and its journal line at close
        self.fsync_commits = fsync_commits  # fsync every committed file before its rename
        self.staging: StagingArea | None = None
        self.view: View | None = None
        self._thread: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._failure: BaseException | None = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._waiting: dict[str, list[tuple[str, dict]]] = {}   # recovered entries by medium key
        self._stale: list[str] = []
        self._bound_real = False
        self._busy_keys: set[str] = set()
        # a take-over (attach) and recovery's sweep of the mount table and the journal
        # exclude each other: the sweep would take an attach's fresh hidden mount, not yet
        # registered, for a crash's leftover and unmount it under the user
        self._takeover = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        ok, why = available()
        if not ok:
            raise GatewayError(why)
        # mounts of our type left by a killed agent answer "transport endpoint is not
        # connected"; nothing of ours runs yet, so every one of them is stale
        self.staging = StagingArea(self.staging_dir, self.cap_bytes, durable=self.durable)
        self._stale = self._unmount_stale(own_dev=None)
        self._bound_real = mounts.ensure_private_dir(self.real_root)
        self.view_root.mkdir(parents=True, exist_ok=True)
        self.view = View(self, self.staging)
        self._dispatcher = threading.Thread(target=self._dispatch, name="baomi-gateway-events", daemon=True)
        self._dispatcher.start()
        self._thread = threading.Thread(target=self._run, name="baomi-gateway-fuse", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None or self._token is None:
            raise GatewayError(f"FUSE view did not start: {self._failure}")
        self._watcher = threading.Thread(target=self._watch, name="baomi-gateway-mounts", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Waits for pending judgements and commits, then releases every mount."""
        if self._token is None:
            return
        for key in list(self.view.media):
            try:
                self.detach(key)
            except Exception:
                log.exception("detach %s at stop", key)
        self._stopping.set()
        try:
            trio.from_thread.run_sync(pyfuse3.terminate, trio_token=self._token)
        except trio.RunFinishedError:
            pass
        self._thread.join(30)
        self._token = None
        if self._watcher:
            self._watcher.join(5)
        self._events.put(None)
        self._dispatcher.join(10)
        self.staging.close()
        below = [e for e in mounts.mountinfo() if e.mountpoint.startswith(str(self.real_root) + "/")]
        if self._bound_real and not below:  # leave the runtime folder as start() found it
            mounts.umount_patiently(self.real_root)

    def _run(self) -> None:
        opts = set(pyfuse3.default_options)          # default_permissions: the kernel checks modes
        opts |= {"allow_other", "fsname=baomi", f"subtype={SUBTYPE}"}
        try:
            pyfuse3.init(self.view, str(self.view_root), opts)
        except BaseException as e:
            self._failure = e
            self._ready.set()
            return
        try:
            trio.run(self._serve)
        except BaseException as e:
            self._failure = e
            log.exception("FUSE loop ended")
        finally:
            try:
                pyfuse3.close(unmount=True)
            except Exception:
                pass
            self._ready.set()

    async def _serve(self) -> None:
        async with trio.open_nursery() as n:
            self._nursery = n
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await pyfuse3.main(min_tasks=4, max_tasks=64)
            n.cancel_scope.cancel()

    def _call(self, afn: Callable, *args: Any) -> Any:
        if self._token is None:
            raise GatewayError("gateway not started")
        return trio.from_thread.run(afn, *args, trio_token=self._token)

    # -- events and the judge --------------------------------------------------------
    async def emit(self, name: str, fields: dict) -> None:
        # queued to a thread of its own: the agent's handler may block (spool, disk),
        # and the FUSE loop must not
        self._events.put((name, fields))

    def _emit_now(self, name: str, fields: dict) -> None:
        self._events.put((name, fields))

    def _dispatch(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            try:
                self.on_event(*item)
            except Exception:
                log.exception("on_event(%s) failed", item[0])

    async def call_judge(self, staged: StagedFile) -> Judgement:
        return await trio.to_thread.run_sync(self.judge_now, staged)

    def judge_now(self, staged: StagedFile) -> Judgement:
        """The agent's judge, in a worker thread (never on the FUSE loop)."""
        try:
            verdict = self.judge(staged)
            if not isinstance(verdict, Judgement):
                raise TypeError(f"judge returned {type(verdict).__name__}, not Judgement")
            return verdict
        except Exception as e:
            # fail closed: what could not be judged does not reach the medium
            log.exception("judge failed on %s", staged.relpath)
            self._emit_now("gateway.judge_error", {"key": staged.key, "path": staged.relpath, "error": str(e)})
            return Judgement(commit=False, errno=errno.EACCES, reason="judge failed")

    # -- media -----------------------------------------------------------------------
    def _name(self, key: str) -> str:
        return quote(key, safe="")

    def attach(self, key: str, mountpoint: Path, fs_uuid: str = "") -> None:
        """Hide the real filesystem mounted at mountpoint under real_root and serve the
        FUSE view there instead. Raises GatewayError when it cannot (the agent then
        stays in after_write mode for this medium)."""
        if self._token is None:
            raise GatewayError("gateway not started")
        with self._takeover:
            self._attach(key, os.path.abspath(mountpoint), fs_uuid)

    def _attach(self, key: str, mp: str, fs_uuid: str) -> None:
        if key in self.view.media:
            raise GatewayError(f"{key} is already held")
        top = mounts.mount_at(mp)
        if top is None:
            raise GatewayError(f"{mp} is not a mount point")
        if top.fstype == FSTYPE:
            raise GatewayError(f"{mp} is already a gateway view")
        real = self.real_root / self._name(key)
        real.mkdir(mode=0o700, exist_ok=True)
        try:
            mounts.bind(mp, real)
            mounts.make_private(real)
        except OSError as e:
            raise GatewayError(f"cannot bind {mp} under {self.real_root}: {e}")
        try:
            mounts.umount(mp)
        except OSError as e:
            mounts.umount_patiently(real)
            raise GatewayError(f"cannot take over {mp} (busy?): {e}")
        try:
            self._serve_medium(key, mp, str(real), top.fstype, fs_uuid or mounts.fs_uuid(top.source),
                               top.source)
        except Exception as e:
            # put the real filesystem back where the user expects it
            try:
                mounts.bind(real, mp)
            except OSError:
                pass
            mounts.umount_patiently(real)
            raise GatewayError(f"cannot serve {mp}: {e}")

    def _serve_medium(self, key: str, mp: str, real: str, fstype: str, fs_uuid: str, source: str) -> None:
        root_fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        m = Medium(key=key, mountpoint=mp, real_path=real, root_fd=root_fd, fstype=fstype, fs_uuid=fs_uuid)
        m.name = self._name(key)
        entry = mounts.mount_at(real)
        m.read_only = entry is not None and entry.read_only
        self.staging.write_medium(key, {"key": key, "mountpoint": mp, "real": real, "fstype": fstype,
                                        "fs_uuid": fs_uuid, "source": source, "since": time.time()})
        self._call(self._register, m)
        try:
            # resolving the source path asks our own FUSE server: done by a short-lived
            # child, so no thread of the agent ever waits on its own filesystem
            mounts.bind_in_child(self.view_root / m.name, mp)
        except OSError:
            self._call(self._unregister, m)
            os.close(root_fd)
            self.staging.remove_medium(key)
            raise
        # only now may the mount watcher judge this medium by its mounts
        self._call(self._serving, m)
        self._emit_now("gateway.held", {"key": key, "mountpoint": mp, "fstype": fstype, "fs_uuid": fs_uuid})
        if self._waiting.get(key):
            self._call(self._recommit_waiting, key, None)

    async def _register(self, m: Medium) -> None:
        self.view.media[m.key] = m

    async def _serving(self, m: Medium) -> None:
        if m.state == "attaching":
            m.state = "serving"

    async def _unregister(self, m: Medium) -> None:
        self.view.media.pop(m.key, None)

    def detach(self, key: str) -> None:
        """Finish pending judgements and commits of this medium, then release both mounts."""
        if key not in self.view.media:
            return
        self._call(self._detach, key, "detached")

    def mode(self, key: str) -> str:
        m = self.view.media.get(key) if self.view else None
        return "held" if m is not None and m.state == "serving" else "none"

    def mountpoint(self, key: str) -> str | None:
        """Where users reach a held medium."""
        m = self.view.media.get(key) if self.view else None
        return m.mountpoint if m is not None else None

    def real_path(self, key: str) -> str | None:
        """Where the agent itself reads a held medium: never through its own view, which the
        process serving it must not enter (a SIGKILL mid-request would leave it unkillable)."""
        m = self.view.media.get(key) if self.view else None
        return m.real_path if m is not None else None

    def keys(self) -> list[str]:
        return [k for k, m in self.view.media.items() if m.state == "serving"]

    async def _detach(self, key: str, reason: str) -> None:
        m = self.view.media.get(key)
        if m is None or m.state != "serving":
            return
        m.state = "detaching"
        deadline = trio.current_time() + self.detach_timeout
        while (m.writers > 0 or m.busy > 0) and trio.current_time() < deadline:
            await trio.sleep(0.05)
        for s in self.view.mark_gone(m):
            await self.emit("gateway.not_committed", {"key": key, "path": s.rel, "size": s.size, "pid": s.pid,
                                                      "uid": s.uid, "reason": "still open at detach"})
            if s.handles == 0 and not s.lock.locked():
                self.view.drop(s)
        await self._release(m, reason)

    async def _medium_gone(self, key: str, reason: str) -> None:
        m = self.view.media.get(key)
        if m is None or m.state == "gone":
            return
        gone = self.view.mark_gone(m)
        for s in gone:
            # offered to the judge so blocked content can still go to the quarantine
            if s.fd >= 0:
                await self.call_judge(self.view._staged_file(s, medium_gone=True))
            await self.emit("gateway.not_committed", {"key": key, "path": s.rel, "size": s.size, "pid": s.pid,
                                                      "uid": s.uid, "reason": reason})
            if s.handles == 0 and not s.lock.locked():
                self.view.drop(s)
        await self._release(m, "medium_gone")

    async def medium_error(self, m: Medium, e: OSError) -> None:
        if e.errno in _GONE_ERRNOS and m.state == "serving" and self._nursery is not None:
            self._nursery.start_soon(self._medium_gone, m.key, f"medium error: {e.strerror}")

    async def _release(self, m: Medium, reason: str) -> None:
        m.state = "gone"
        # read handles still open keep their own fds; umount falls back to lazy then
        try:
            os.close(m.root_fd)
        except OSError:
            pass
        m.root_fd = -1

        def unmount_both() -> tuple[bool, bool]:
            user_clean = True
            top = mounts.mount_at(m.mountpoint)
            if top is not None and top.fstype == FSTYPE and top.root == "/" + m.name:
                user_clean = mounts.umount_patiently(m.mountpoint)
            real_clean = mounts.umount_patiently(m.real_path)
            try:
                os.rmdir(m.real_path)
            except OSError:
                pass
            return user_clean, real_clean

        user_clean, real_clean = await trio.to_thread.run_sync(unmount_both)
        self.staging.remove_medium(m.key)
        self.view.media.pop(m.key, None)
        for (k, rel), ino in list(self.view._ino_of.items()):
            if k == m.key:
                del self.view._ino_of[(k, rel)]
                self.view._path_of.pop(ino, None)
        await self.emit("gateway.released", {"key": m.key, "mountpoint": m.mountpoint, "reason": reason,
                                             "committed": m.committed, "lazy": not (user_clean and real_clean)})

    # -- watching the mount table: user unmount, yanked medium -------------------------
    def _watch(self) -> None:
        with open("/proc/self/mountinfo") as f:
            p = select.poll()
            p.register(f, select.POLLPRI | select.POLLERR)
            while not self._stopping.is_set():
                p.poll(500)            # the kernel flags any change of the mount table
                f.seek(0)
                f.read()
                try:
                    self._check_mounts()
                except Exception:
                    log.exception("mount check")

    def _check_mounts(self) -> None:
        if self.view is None:
            return
        table = mounts.mountinfo()
        points = {e.mountpoint: e for e in table}
        for key, m in list(self.view.media.items()):
            if m.state != "serving" or key in self._busy_keys:
                continue
            user = mounts.mount_at(m.mountpoint, table)
            real = points.get(m.real_path)      # the topmost mount there, as mount_at finds it
            if real is not None:
                m.read_only = real.read_only
            if real is None:
                action, why = self._medium_gone, "real filesystem gone"
            elif user is None or user.fstype != FSTYPE or user.root != "/" + m.name:
                action, why = self._detach, "unmounted"
            else:
                continue
            self._busy_keys.add(key)

            def run(action=action, key=key, why=why) -> None:
                try:
                    self._call(action, key, why)
                except Exception:
                    log.exception("%s %s", why, key)
                finally:
                    self._busy_keys.discard(key)
            threading.Thread(target=run, name=f"baomi-gateway-{why}", daemon=True).start()

    # -- crash recovery ----------------------------------------------------------------
    def _unmount_stale(self, own_dev: str | None) -> list[str]:
        """Lazily unmount what a killed gateway of this agent left: its view at
        view_root, every bind of that view (same device number), and anything of our
        type still on a mount point this staging area recorded. Other gateways' mounts
        (another agent instance, a test beside this one) are left alone."""
        table = mounts.mountinfo()
        recorded = {mr.get("mountpoint") for mr in self.staging.media()}
        dead = {e.devnum for e in table
                if e.fstype == FSTYPE and e.mountpoint == str(self.view_root) and e.devnum != own_dev}
        found = []
        for e in reversed(table):       # binds first, then the views under them
            if e.fstype == FSTYPE and e.devnum != own_dev and (e.devnum in dead or e.mountpoint in recorded):
                try:
                    mounts.umount(e.mountpoint, lazy=True)
                    found.append(e.mountpoint)
                except OSError as err:
                    log.warning("stale %s: %s", e.mountpoint, err)
        return found

    def recover(self, reattach: bool = True, forget_absent: bool = False) -> Recovery:
        """After an agent crash: clear stale view mounts, serve again the media whose
        hidden real mount survived, and settle every staged file left behind: complete
        ones are re-judged and committed (or refused), incomplete ones reported lost,
        those of absent media kept until their medium is attached (or reported lost
        with forget_absent)."""
        if self._token is None:
            raise GatewayError("start() first")
        with self._takeover:
            rec = self._sweep(reattach)
        self._settle_waiting(rec, forget_absent)
        return rec

    async def _staged_snapshot(self) -> tuple[list[tuple[str, dict | None]], set[str]]:
        """The journal's entries and the ids being staged now, at one moment of the FUSE loop."""
        return list(self.staging.records()), {s.sid for s in self.view.staged.values()}

    def _sweep(self, reattach: bool) -> Recovery:
        """Stale mounts, media served again, and the journal's entries sorted: lost ones
        reported, complete ones left in _waiting for their medium."""
        rec = Recovery()
        # never stat our own mount from this process: a thread waiting on its own FUSE
        # server can keep a SIGKILLed agent from ever exiting (and so hang every user)
        top = mounts.mount_at(self.view_root)
        own = top.devnum if top is not None and top.fstype == FSTYPE else None
        rec.stale_mounts = self._stale + self._unmount_stale(own_dev=own)
        self._stale = []
        # taken before any medium is served again: a file a user starts on a medium served
        # again below is not a crash's leftover
        leftover, live = self._call(self._staged_snapshot)
        table = mounts.mountinfo()
        for mr in self.staging.media():
            key = mr.get("key", "")
            if key in self.view.media:
                continue
            real = mr.get("real", "")
            if mounts.mount_at(real, table) is not None and reattach:
                try:
                    self._serve_medium(key, mr["mountpoint"], real, mr.get("fstype", ""),
                                       mr.get("fs_uuid", ""), mr.get("source", ""))
                    rec.reattached.append(key)
                    continue
                except Exception as e:
                    log.warning("cannot serve %s again at %s: %s", key, mr.get("mountpoint"), e)
                    mounts.umount_patiently(real)
            elif mounts.mount_at(real, table) is not None:
                mounts.umount_patiently(real)
            try:
                os.rmdir(real)
            except OSError:
                pass
            self.staging.remove_medium(key)
        # hidden real mounts without a record (crash between bind and record)
        for e in table:
            if e.mountpoint.startswith(str(self.real_root) + "/") and \
                    not any(m.real_path == e.mountpoint for m in self.view.media.values()):
                mounts.umount_patiently(e.mountpoint)
        for sid, r in leftover:
            if sid in live:
                continue
            if r is None:
                # committed while still open (its record removed then), or the crash came
                # before the first record: the writer was still in open(), nothing to name
                self.staging.remove(sid)
                continue
            key, rel, state = r.get("key", ""), r.get("relpath", ""), r.get("state", OPEN)
            if state == COMMITTED:
                self.staging.remove(sid)
                continue
            if state == OPEN:
                self.staging.remove(sid)
                rec.lost.append((key, rel))
                self._emit_now("gateway.lost", {"key": key, "path": rel, "size": r.get("size", 0), "uid":
                                                r.get("uid"), "pid": r.get("pid"),
                                                "reason": "incomplete: the writer had not closed the file"})
                continue
            self._waiting.setdefault(key, []).append((sid, r))
        return rec

    def _settle_waiting(self, rec: Recovery, forget_absent: bool) -> None:
        for key in list(self._waiting):
            if key in self.view.media:
                self._call(self._recommit_waiting, key, rec)
            elif forget_absent:
                for sid, r in self._waiting.pop(key):
                    self.staging.remove(sid)
                    rec.lost.append((key, r.get("relpath", "")))
                    self._emit_now("gateway.lost", {"key": key, "path": r.get("relpath", ""),
                                                    "size": r.get("size", 0), "uid": r.get("uid"),
                                                    "reason": "medium not attached"})
            else:
                rec.waiting.extend((key, r.get("relpath", "")) for _, r in self._waiting[key])

    async def _recommit_waiting(self, key: str, rec: Recovery | None) -> None:
        m = self.view.media.get(key)
        if m is None:
            return
        pending = self._waiting.pop(key, [])
        while pending:
            if m.state not in ("serving", "attaching") or m.root_fd < 0:
                # released while these waited their turn: they wait for the next attach, and
                # their hidden copies are removed then (root_fd is closed now)
                self._waiting.setdefault(key, []).extend(pending)
                return
            sid, r = pending.pop(0)
            rel = r.get("relpath", "")
            path = self.staging.data_path(sid)
            await trio.to_thread.run_sync(remove_quietly, m.root_fd,
                                          os.path.join(os.path.dirname(rel), COMMIT_PREFIX + sid[:16]))
            outcome = "lost"
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                fd = -1
            if fd >= 0 and (key, rel) not in self.view.staged:
                size = os.fstat(fd).st_size
                self.staging.reserve(0)
                self.staging.used += size       # over the cap if need be: it is already on disk
                exists = self.view._stat_or_none(m, rel) is not None
                s = Staged(sid=sid, key=key, rel=rel, fd=fd, new=not exists, size=size, gen=1, judged_gen=0,
                           committed_gen=0, pid=r.get("pid", 0), uid=r.get("uid", 0), gid=r.get("gid", 0),
                           mode=r.get("mode", 0o644), state=CLOSED, recovered=True)
                self.view.staged[(key, rel)] = s
                try:
                    await self.view.judge_and_commit(s)
                    outcome = "committed"
                except pyfuse3.FUSEError:
                    outcome = "refused" if s.refusal is not None else "lost"
                self.view.drop(s)
            elif fd >= 0:
                os.close(fd)
                self.staging.remove(sid)
            else:
                self.staging.remove(sid)
            if rec is not None:
                getattr(rec, outcome).append((key, rel))
            if outcome == "lost":
                await self.emit("gateway.lost", {"key": key, "path": rel, "size": r.get("size", 0),
                                                 "uid": r.get("uid"), "reason": "could not be committed after restart"})
            else:
                await self.emit("gateway.recovered", {"key": key, "path": rel, "outcome": outcome})
