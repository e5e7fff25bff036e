"""The FUSE view: one filesystem whose top-level directories are the held media.

Reads, directories and metadata pass through to the medium's real root (a directory
fd, every call relative to it); files opened for writing are held in staging and
reach the medium only after the judge says commit.
"""
from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyfuse3
import trio

from .commit import FAT, OWNERLESS, copy_phase, remove_quietly, rename_phase
from .copy import copy_file
from .staging import CLOSED, COMMITTED, OPEN, StagingArea
from .types import COMMIT_PREFIX, Judgement, StagedFile

if TYPE_CHECKING:
    from .gateway import Gateway

log = logging.getLogger("baomi.gateway")

TIMEOUT = 1.0          # kernel attribute/entry cache, seconds
BLKSIZE = 1 << 20      # advertised st_blksize: cp and friends size their buffers by it
SMALL = 1 << 20        # commits up to this size copy and rename in one thread hop
PLACEHOLDER_S = 60.0   # how long an empty file committed through the view counts as a placeholder
# a file committed this recently and then renamed was written under a temporary name
# (rsync's .name.XXXXXX, editors' save files): the rename is reported with the copy's
# size, so the record of the copy ends with the name the user sees
RENAMED_S = 60.0
ROOT = pyfuse3.ROOT_INODE


@dataclass
class Medium:
    key: str
    mountpoint: str
    real_path: str
    root_fd: int
    fstype: str
    fs_uuid: str
    state: str = "attaching"      # attaching | serving | detaching | gone
    handles: int = 0              # open file handles on this medium
    writers: int = 0              # of which opened for writing
    busy: int = 0                 # judgements/commits in flight
    # the final rename of a commit vs a user's rename: a thread lock, because commits
    # finish in worker threads; each holder does one rename, so waits are short
    ns_lock: threading.Lock = field(default_factory=threading.Lock)
    committed: int = 0
    name: str = ""                # its directory in the view (the key, quoted)
    # the real filesystem is mounted read-only (as found at attach, then kept current by
    # the mount watcher: ext4's errors=remount-ro, an administrator's remount)
    read_only: bool = False


@dataclass
class Staged:
    sid: str
    key: str
    rel: str
    fd: int
    new: bool                     # not on the medium yet (created through the view)
    size: int = 0
    gen: int = 0                  # bumped by every change
    judged_gen: int = -1
    committed_gen: int = -1       # gen whose content is on the medium
    commit_error_gen: int = -1    # gen whose commit failed (medium full, I/O error)
    refusal: int | None = None    # errno of the last refusal of judged_gen
    failed: int | None = None     # ENOSPC etc.: never commit, close() reports it
    unlinked: bool = False        # removed or renamed over by the user: nothing to commit
    gone: bool = False            # the medium vanished
    freed: bool = False           # host copy released
    handles: int = 0
    pid: int = 0
    uid: int = 0
    gid: int = 0
    mode: int = 0o644
    times: tuple[int, int] | None = None   # (atime_ns, mtime_ns) to apply at commit
    state: str = OPEN
    lock: trio.Lock = field(default_factory=trio.Lock)
    recovered: bool = False

    def needs_judgement(self) -> bool:
        return self.gen != self.judged_gen

    def pending(self) -> bool:
        """Content not on the medium yet."""
        return self.new or self.gen != self.committed_gen


@dataclass
class Handle:
    ino: int
    key: str
    fd: int | None = None         # real file (read-only pass-through)
    staged: Staged | None = None
    writable: bool = False


def _child(rel: str, name: str) -> str:
    return name if not rel else f"{rel}/{name}"


def _at(rel: str) -> str:
    return rel or "."


class Recent:
    """Paths noted in the last `window` seconds with a value, oldest first, at most
    `limit` of them: what the view remembers about files it committed moments ago."""

    def __init__(self, window: float, limit: int = 50_000) -> None:
        self.window, self.limit = window, limit
        self._items: dict[tuple[str, str], tuple[float, Any]] = {}

    def note(self, key: tuple[str, str], value: Any = True) -> None:
        now = time.monotonic()
        items = self._items
        while items:      # insertion order is age order
            k, (t, _) = next(iter(items.items()))
            if now - t <= self.window and len(items) < self.limit:
                break
            del items[k]
        items.pop(key, None)
        items[key] = (now, value)

    def pop(self, key: tuple[str, str]) -> Any:
        """The value noted for key within the window, else None; forgotten either way."""
        hit = self._items.pop(key, None)
        return hit[1] if hit is not None and time.monotonic() - hit[0] <= self.window else None


def _refuse_if_read_only(m: Medium) -> None:
    """A write that cannot be committed fails where it starts, as on the medium itself:
    at open, not at a close that the shell's `>>` never checks."""
    if m.read_only:
        raise pyfuse3.FUSEError(errno.EROFS)


def _err(e: OSError) -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(e.errno or errno.EIO)


class View(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False

    def __init__(self, gw: "Gateway", staging: StagingArea) -> None:
        super().__init__()
        self.gw = gw
        self.staging = staging
        self.media: dict[str, Medium] = {}
        self._ino_of: dict[tuple[str, str], int] = {}
        self._path_of: dict[int, tuple[str, str]] = {}
        self._next_ino = itertools.count(ROOT + 1)
        self._next_fh = itertools.count(1)
        self.handles: dict[int, Handle] = {}
        self.staged: dict[tuple[str, str], Staged] = {}
        self.max_write_seen = 0
        # new files committed empty, by (key, relpath): an application's placeholder
        # (LibreOffice creates its save file empty, closes it, then writes it)
        self._placeholders = Recent(PLACEHOLDER_S)
        self._committed = Recent(RENAMED_S)     # (key, rel) -> size, for renames right after
        self._dirlists: dict[int, list[tuple[str, pyfuse3.EntryAttributes]]] = {}
        # existing files whose old content is being copied into staging, by (key, relpath)
        self._staging_now: dict[tuple[str, str], trio.Event] = {}

    # -- inode table: stable numbers per (medium, path) ------------------------
    def ino(self, key: str, rel: str) -> int:
        k = (key, rel)
        ino = self._ino_of.get(k)
        if ino is None:
            ino = next(self._next_ino)
            self._ino_of[k] = ino
            self._path_of[ino] = k
        return ino

    def path(self, ino: int) -> tuple[Medium, str]:
        try:
            key, rel = self._path_of[ino]
        except KeyError:
            raise pyfuse3.FUSEError(errno.ENOENT)
        m = self.media.get(key)
        if m is None or m.state == "gone":
            raise pyfuse3.FUSEError(errno.EIO if m else errno.ENOENT)
        return m, rel

    def _move_paths(self, key: str, src: str, dst: str) -> None:
        """A rename: inode numbers and staged entries follow the new name."""
        old = self._ino_of.pop((key, dst), None)
        if old is not None:
            self._path_of.pop(old, None)
        for (k, rel), ino in list(self._ino_of.items()):
            if k == key and (rel == src or rel.startswith(src + "/")):
                new = dst + rel[len(src):]
                del self._ino_of[(k, rel)]
                self._ino_of[(k, new)] = ino
                self._path_of[ino] = (k, new)
        victim = self.staged.pop((key, dst), None)
        if victim is not None:
            victim.unlinked = True     # renamed over: its content is gone, like an unlinked file
        for (k, rel), s in list(self.staged.items()):
            if k == key and (rel == src or rel.startswith(src + "/")):
                new = dst + rel[len(src):]
                del self.staged[(k, rel)]
                s.rel = new
                self.staged[(k, new)] = s
                self._record(s, durable=False)

    # -- attributes ------------------------------------------------------------
    def _attrs(self, st: os.stat_result | None, ino: int, s: Staged | None = None) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.generation = 0
        a.entry_timeout = TIMEOUT
        a.attr_timeout = TIMEOUT
        if st is not None:
            a.st_mode, a.st_nlink, a.st_uid, a.st_gid = st.st_mode, st.st_nlink, st.st_uid, st.st_gid
            a.st_rdev, a.st_size, a.st_blocks = st.st_rdev, st.st_size, st.st_blocks
            a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
        else:
            a.st_mode, a.st_nlink = stat.S_IFREG | (s.mode if s else 0o644), 1
            a.st_uid, a.st_gid = (s.uid, s.gid) if s else (0, 0)
        if s is not None:
            if s.new:
                # the name is not cached by the kernel: a refused new file must vanish at
                # once, and invalidating it from here instead could deadlock (see
                # docs/gateway.md); its attributes may be, the kernel keeps the size itself
                a.entry_timeout = 0
            hs = os.fstat(s.fd)
            a.st_size = s.size
            a.st_blocks = hs.st_blocks
            a.st_mtime_ns = s.times[1] if s.times else hs.st_mtime_ns
            a.st_ctime_ns = hs.st_ctime_ns
            if s.new:
                a.st_mode = stat.S_IFREG | s.mode
                a.st_uid, a.st_gid = s.uid, s.gid
                a.st_atime_ns = s.times[0] if s.times else hs.st_atime_ns
        a.st_blksize = BLKSIZE if stat.S_ISREG(a.st_mode) else 4096
        return a

    def _top_attrs(self) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino, a.st_mode, a.st_nlink, a.st_uid, a.st_gid = ROOT, stat.S_IFDIR | 0o700, 2, 0, 0
        a.entry_timeout = a.attr_timeout = TIMEOUT
        now = time.time_ns()
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = now
        return a

    def _stat(self, m: Medium, rel: str) -> os.stat_result:
        try:
            return os.stat(_at(rel), dir_fd=m.root_fd, follow_symlinks=False)
        except OSError as e:
            raise _err(e)

    def _entry(self, m: Medium, rel: str) -> pyfuse3.EntryAttributes:
        ino = self.ino(m.key, rel)
        s = self.staged.get((m.key, rel))
        if s is not None:
            st = None if s.new else self._stat_or_none(m, rel)
            return self._attrs(st, ino, s)
        return self._attrs(self._stat(m, rel), ino)

    def _stat_or_none(self, m: Medium, rel: str) -> os.stat_result | None:
        try:
            return os.stat(_at(rel), dir_fd=m.root_fd, follow_symlinks=False)
        except OSError:
            return None

    @staticmethod
    def _name(name: bytes) -> str:
        n = os.fsdecode(name)
        if n.startswith(COMMIT_PREFIX):
            raise pyfuse3.FUSEError(errno.ENOENT)
        return n

    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        n = os.fsdecode(name)
        if parent_inode == ROOT:
            m = next((x for x in self.media.values() if x.name == n), None)
            if m is None or m.state not in ("serving", "attaching"):
                raise pyfuse3.FUSEError(errno.ENOENT)
            return self._entry(m, "")
        m, rel = self.path(parent_inode)
        return self._entry(m, _child(rel, self._name(name)))

    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        if inode == ROOT:
            return self._top_attrs()
        m, rel = self.path(inode)
        return self._entry(m, rel)

    async def forget(self, inode_list: Any) -> None:
        pass   # inode numbers stay allocated per path while the medium is held

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        # pyfuse3 does not say which inode is asked about; with several media held,
        # report the fullest one so no tool overestimates free space.
        sv = pyfuse3.StatvfsData()
        best = None
        for m in self.media.values():
            if m.state != "serving":
                continue
            try:
                v = os.fstatvfs(m.root_fd)
            except OSError:
                continue
            if best is None or v.f_bavail * v.f_frsize < best.f_bavail * best.f_frsize:
                best = v
        if best is None:
            sv.f_bsize = sv.f_frsize = 4096
            sv.f_namemax = 255
            return sv
        for f in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree",
                  "f_favail", "f_namemax"):
            setattr(sv, f, getattr(best, f))
        return sv

    # -- directories -------------------------------------------------------------
    async def opendir(self, inode: int, ctx: Any) -> int:
        fh = next(self._next_fh)
        if inode == ROOT:
            names = [(m.name, self._entry(m, "")) for m in self.media.values() if m.state == "serving"]
        else:
            m, rel = self.path(inode)
            try:
                dfd = os.open(_at(rel), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=m.root_fd)
            except OSError as e:
                raise _err(e)
            try:
                listed = set(os.listdir(dfd))
                hidden = {n for n in listed if n.startswith(COMMIT_PREFIX)}
                listed -= hidden
                if hidden and m.busy == 0:
                    # no commit in flight on this medium (and none can start before this
                    # returns: commits start on this thread), so these are a killed
                    # agent's leftovers that recovery had no record of: never shown, and
                    # removed here rather than left to fill the stick
                    for n in hidden:
                        remove_quietly(dfd, n)
            finally:
                os.close(dfd)
            for (k, srel), s in self.staged.items():   # new files live only in staging
                if k == m.key and s.new and os.path.dirname(srel) == rel:
                    listed.add(os.path.basename(srel))
            # the dot entries too, as any filesystem lists them (ls -a); the kernel makes
            # no dentries of them and takes no lookup count
            names = [(".", self._entry(m, rel)),
                     ("..", self._entry(m, os.path.dirname(rel)) if rel else self._top_attrs())]
            for n in sorted(listed):
                try:
                    names.append((n, self._entry(m, _child(rel, n))))
                except pyfuse3.FUSEError:
                    pass
        self._dirlists[fh] = names
        return fh

    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        names = self._dirlists.get(fh, [])
        for i in range(start_id, len(names)):
            n, a = names[i]
            if not pyfuse3.readdir_reply(token, os.fsencode(n), a, i + 1):
                break

    async def releasedir(self, fh: int) -> None:
        self._dirlists.pop(fh, None)

    def _writable_medium(self, parent_inode: int) -> tuple[Medium, str]:
        if parent_inode == ROOT:
            raise pyfuse3.FUSEError(errno.EPERM)
        m, rel = self.path(parent_inode)
        if m.state != "serving":
            raise pyfuse3.FUSEError(errno.EIO)
        return m, rel

    def _own(self, m: Medium, rel: str, ctx: Any) -> None:
        # we act as root: hand new objects to the caller where the fs keeps owners
        try:
            os.chown(_at(rel), ctx.uid, ctx.gid, dir_fd=m.root_fd, follow_symlinks=False)
        except OSError:
            pass   # vfat/exfat: owners come from mount options

    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        m, rel = self._writable_medium(parent_inode)
        c = _child(rel, self._name_new(name))
        try:
            os.mkdir(c, mode & ~ctx.umask & 0o7777, dir_fd=m.root_fd)
        except OSError as e:
            raise _err(e)
        self._own(m, c, ctx)
        return self._entry(m, c)

    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        m, rel = self._writable_medium(parent_inode)
        c = _child(rel, self._name(name))
        if any(k == m.key and r.startswith(c + "/") and s.new for (k, r), s in self.staged.items()):
            raise pyfuse3.FUSEError(errno.ENOTEMPTY)
        try:
            os.rmdir(c, dir_fd=m.root_fd)
        except OSError as e:
            raise _err(e)

    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        m, rel = self._writable_medium(parent_inode)
        c = _child(rel, self._name(name))
        s = self.staged.pop((m.key, c), None)
        if s is not None:
            s.unlinked = True      # open writers keep writing into nothing
            self._ino_of.pop((m.key, c), None)
            if s.new:
                return
        try:
            os.unlink(c, dir_fd=m.root_fd)
        except OSError as e:
            raise _err(e)
        ino = self._ino_of.pop((m.key, c), None)
        if ino is not None:
            self._path_of.pop(ino, None)

    def _name_new(self, name: bytes) -> str:
        n = os.fsdecode(name)
        if n.startswith(COMMIT_PREFIX):
            raise pyfuse3.FUSEError(errno.EPERM)   # reserved for commits
        return n

    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int,
                     name_new: bytes, flags: int, ctx: Any) -> None:
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise pyfuse3.FUSEError(errno.EINVAL)
        m, rel_old = self._writable_medium(parent_inode_old)
        m2, rel_new = self._writable_medium(parent_inode_new)
        if m is not m2:
            raise pyfuse3.FUSEError(errno.EXDEV)
        src, dst = _child(rel_old, self._name(name_old)), _child(rel_new, self._name_new(name_new))
        with m.ns_lock:
            s = self.staged.get((m.key, src))
            dst_exists = (m.key, dst) in self.staged or self._stat_or_none(m, dst) is not None
            if flags & pyfuse3.RENAME_NOREPLACE and dst_exists:
                raise pyfuse3.FUSEError(errno.EEXIST)
            if s is None or not s.new:
                try:
                    os.rename(src, dst, src_dir_fd=m.root_fd, dst_dir_fd=m.root_fd)
                except OSError as e:
                    raise _err(e)
            elif self._stat_or_none(m, dst) is not None and stat.S_ISDIR(self._stat(m, dst).st_mode):
                raise pyfuse3.FUSEError(errno.EISDIR)
            self._move_paths(m.key, src, dst)
        size = self._committed.pop((m.key, src))
        if size is not None:
            self._committed.note((m.key, dst), size)
            await self.gw.emit("gateway.renamed", {"key": m.key, "path": dst, "from": src, "size": size,
                                                   "pid": ctx.pid, "uid": ctx.uid})

    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        m, rel = self._writable_medium(parent_inode)
        c = _child(rel, self._name_new(name))
        try:
            os.symlink(target, c, dir_fd=m.root_fd)
        except OSError as e:
            raise _err(e)
        self._own(m, c, ctx)
        return self._entry(m, c)

    async def readlink(self, inode: int, ctx: Any) -> bytes:
        m, rel = self.path(inode)
        try:
            return os.readlink(os.fsencode(_at(rel)), dir_fd=m.root_fd)
        except OSError as e:
            raise _err(e)

    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        raise pyfuse3.FUSEError(errno.EPERM)   # commits replace files by rename; links would split

    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any) -> pyfuse3.EntryAttributes:
        raise pyfuse3.FUSEError(errno.EPERM)

    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: Any, fh: int | None,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        m, rel = self.path(inode)
        s = self.staged.get((m.key, rel))
        if fields.update_size:
            if s is None:
                # truncate(2) on a path that is not open: stage, change, judge now
                s = await self._stage(m, rel, ctx, truncate=attr.st_size == 0)
                s.handles += 1
                try:
                    await self._resize(s, attr.st_size)
                    await self.judge_and_commit(s)
                finally:
                    s.handles -= 1
                    await self._finish(s)
                s = None
            else:
                await self._resize(s, attr.st_size)
        on_real = s is None or not s.new
        try:
            if fields.update_mode:
                if on_real:
                    os.chmod(_at(rel), stat.S_IMODE(attr.st_mode), dir_fd=m.root_fd)
                if s is not None:
                    s.mode = stat.S_IMODE(attr.st_mode)
            if fields.update_uid or fields.update_gid:
                uid = attr.st_uid if fields.update_uid else -1
                gid = attr.st_gid if fields.update_gid else -1
                if on_real:
                    os.chown(_at(rel), uid, gid, dir_fd=m.root_fd, follow_symlinks=False)
                if s is not None:
                    s.uid, s.gid = (uid if uid >= 0 else s.uid), (gid if gid >= 0 else s.gid)
            if fields.update_atime or fields.update_mtime:
                cur = self._entry(m, rel)
                at = attr.st_atime_ns if fields.update_atime else cur.st_atime_ns
                mt = attr.st_mtime_ns if fields.update_mtime else cur.st_mtime_ns
                if s is not None:
                    s.times = (at, mt)       # applied to the committed copy
                if on_real and (s is None or not s.pending()) and not (rel == "" and m.fstype in FAT):
                    os.utime(_at(rel), ns=(at, mt), dir_fd=m.root_fd, follow_symlinks=False)
        except OSError as e:
            raise _err(e)
        return self._entry(m, rel)

    # -- files ---------------------------------------------------------------------
    def _record(self, s: Staged, durable: bool | None = None) -> None:
        m = self.media.get(s.key)
        self.staging.write_record(s.sid, {
            "key": s.key, "fs_uuid": m.fs_uuid if m else "", "relpath": s.rel, "state": s.state,
            "new": s.new, "pid": s.pid, "uid": s.uid, "gid": s.gid, "mode": s.mode, "size": s.size,
            "created": time.time(),
        }, durable=durable)

    async def _stage(self, m: Medium, rel: str, ctx: Any, truncate: bool) -> Staged:
        """Hold an existing medium file in staging, with its current content unless
        truncated, so the whole result of an append or overwrite is judged. Writers
        that open the file while its content is being copied in share that one copy,
        as they share one file on any filesystem (two copies: the last commit would
        drop the other writer's changes)."""
        k = (m.key, rel)
        while (busy := self._staging_now.get(k)) is not None:
            await busy.wait()
        s = self.staged.get(k)
        if s is not None:
            if truncate:
                await self._resize(s, 0)
            return s
        if m.state != "serving":
            raise pyfuse3.FUSEError(errno.EIO)
        _refuse_if_read_only(m)
        done = self._staging_now[k] = trio.Event()
        try:
            return await self._stage_copy(m, rel, ctx, truncate)
        finally:
            del self._staging_now[k]
            done.set()

    async def _stage_copy(self, m: Medium, rel: str, ctx: Any, truncate: bool) -> Staged:
        st = self._stat(m, rel)
        if not stat.S_ISREG(st.st_mode):
            raise pyfuse3.FUSEError(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EPERM)
        size = 0 if truncate else st.st_size
        if not self.staging.reserve(size):
            await self.gw.emit("gateway.staging_full", {"key": m.key, "path": rel, "needed": size,
                                                        "used": self.staging.used, "cap": self.staging.cap})
            raise pyfuse3.FUSEError(errno.ENOSPC)
        sid = self.staging.new_id()
        fd = self.staging.create_data(sid)
        s = Staged(sid=sid, key=m.key, rel=rel, fd=fd, new=False, size=size, gen=0, judged_gen=0,
                   committed_gen=0, pid=ctx.pid, uid=ctx.uid, gid=ctx.gid, mode=stat.S_IMODE(st.st_mode))
        try:
            if size:
                src = os.open(rel, os.O_RDONLY | os.O_CLOEXEC, dir_fd=m.root_fd)
                try:
                    await trio.to_thread.run_sync(copy_file, src, fd, size)
                finally:
                    os.close(src)
            else:
                s.gen = 1          # truncation is a change to commit even if nothing follows
        except OSError as e:
            os.close(fd)
            self.staging.remove(sid)
            self.staging.release(size)
            raise _err(e)
        self.staged[(m.key, rel)] = s
        self._record(s, durable=False)
        return s

    def _open_handle(self, ino: int, key: str, **kw: Any) -> int:
        fh = next(self._next_fh)
        h = self.handles[fh] = Handle(ino=ino, key=key, **kw)
        m = self.media.get(key)
        if m is not None:
            m.handles += 1
            m.writers += h.writable
        return fh

    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        m, rel = self.path(inode)
        write = (flags & os.O_ACCMODE) != os.O_RDONLY or bool(flags & os.O_TRUNC)
        s = self.staged.get((m.key, rel))
        if not write:
            if s is not None:
                s.handles += 1
                return pyfuse3.FileInfo(fh=self._open_handle(inode, m.key, staged=s))
            try:
                fd = os.open(rel, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=m.root_fd)
            except OSError as e:
                raise _err(e)
            return pyfuse3.FileInfo(fh=self._open_handle(inode, m.key, fd=fd), keep_cache=True)
        if m.state != "serving":
            raise pyfuse3.FUSEError(errno.EIO)
        if s is None:
            s = await self._stage(m, rel, ctx, truncate=bool(flags & os.O_TRUNC))
        elif flags & os.O_TRUNC:
            await self._resize(s, 0)
        s.handles += 1
        s.pid, s.uid, s.gid = ctx.pid, ctx.uid, ctx.gid
        return pyfuse3.FileInfo(fh=self._open_handle(inode, m.key, staged=s, writable=True))

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        m, rel = self._writable_medium(parent_inode)
        c = _child(rel, self._name_new(name))
        s = self.staged.get((m.key, c))
        if s is None:
            if self._stat_or_none(m, c) is not None:
                if flags & os.O_EXCL:
                    raise pyfuse3.FUSEError(errno.EEXIST)
                ino = self.ino(m.key, c)
                return await self.open(ino, flags, ctx), self._entry(m, c)
            _refuse_if_read_only(m)
            # a new file lives only in staging until it is committed: a refused one
            # never leaves even an empty directory entry on the medium
            sid = self.staging.new_id()
            s = Staged(sid=sid, key=m.key, rel=c, fd=self.staging.create_data(sid), new=True,
                       pid=ctx.pid, uid=ctx.uid, gid=ctx.gid, mode=mode & ~ctx.umask & 0o7777)
            self.staged[(m.key, c)] = s
            self._record(s, durable=False)
        elif flags & os.O_EXCL:
            raise pyfuse3.FUSEError(errno.EEXIST)
        elif flags & os.O_TRUNC:
            await self._resize(s, 0)
        s.handles += 1
        ino = self.ino(m.key, c)
        fh = self._open_handle(ino, m.key, staged=s, writable=True)
        return pyfuse3.FileInfo(fh=fh), self._entry(m, c)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        h = self.handles[fh]
        try:
            if h.staged is not None:
                return os.pread(h.staged.fd, size, off)
            return os.pread(h.fd, size, off)
        except OSError as e:
            raise _err(e)

    async def _resize(self, s: Staged, size: int) -> None:
        async with s.lock:
            if s.gone or s.freed:
                raise pyfuse3.FUSEError(errno.EIO)
            if size > s.size and not self.staging.reserve(size - s.size):
                await self._staging_full(s, size - s.size)
            os.ftruncate(s.fd, size)
            if size < s.size:
                self.staging.release(s.size - size)
            s.size = size
            s.gen += 1

    async def _staging_full(self, s: Staged, needed: int) -> None:
        s.failed = errno.ENOSPC       # an incomplete file must never be committed
        await self.gw.emit("gateway.staging_full", {"key": s.key, "path": s.rel, "needed": needed,
                                                    "used": self.staging.used, "cap": self.staging.cap})
        raise pyfuse3.FUSEError(errno.ENOSPC)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        h = self.handles[fh]
        s = h.staged
        if s is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        n = len(buf)
        if n > self.max_write_seen:
            self.max_write_seen = n
        async with s.lock:       # never changes content while it is judged or copied
            if s.gone or s.freed:
                raise pyfuse3.FUSEError(errno.EIO)
            if s.failed:
                raise pyfuse3.FUSEError(s.failed)
            end = off + n
            if end > s.size:
                if not self.staging.reserve(end - s.size):
                    await self._staging_full(s, end - s.size)
                s.size = end
            try:
                os.pwrite(s.fd, buf, off)
            except OSError as e:
                raise _err(e)
            s.gen += 1
            if s.state == COMMITTED:
                s.state = OPEN          # changed again after a commit: recorded again
                self._record(s, durable=False)
        return n

    async def flush(self, fh: int) -> None:
        h = self.handles.get(fh)
        if h is None or h.staged is None or not h.writable:
            return
        await self.judge_and_commit(h.staged)

    async def fsync(self, fh: int, datasync: bool) -> None:
        h = self.handles.get(fh)
        if h is None:
            return
        if h.staged is not None:
            await self.judge_and_commit(h.staged, sync=True)
        elif h.fd is not None:
            try:
                os.fsync(h.fd)
            except OSError as e:
                raise _err(e)

    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is None:
            return
        m = self.media.get(h.key)
        if m is not None:
            m.handles -= 1
            m.writers -= h.writable
        if h.fd is not None:
            os.close(h.fd)
            return
        s = h.staged
        if s is None:
            return
        s.handles -= 1
        if s.handles == 0:
            if not (s.gone or s.unlinked or s.failed or s.freed) and s.pending() and \
                    s.commit_error_gen != s.gen and (s.needs_judgement() or s.refusal is None):
                # shared mmap writeback can arrive after the last close: judge what came
                # (content whose commit just failed is not tried again: reported below)
                try:
                    await self.judge_and_commit(s)
                except pyfuse3.FUSEError:
                    pass
            await self._finish(s)

    async def _finish(self, s: Staged) -> None:
        """Last handle closed: the host copy goes. Anything complete, clean and still
        not on the medium is named in an event: never silently lost."""
        if s.handles > 0 or s.freed:
            return
        if s.pending() and s.refusal is None and not (s.failed or s.unlinked or s.gone):
            await self.gw.emit("gateway.not_committed", {"key": s.key, "path": s.rel, "size": s.size,
                                                         "pid": s.pid, "uid": s.uid, "reason": "commit failed"})
        self.drop(s)

    def drop(self, s: Staged) -> None:
        """Forget a staged entry: its host copy goes, nothing goes to the medium."""
        if s.freed:
            return
        s.freed = True
        if self.staged.get((s.key, s.rel)) is s:
            del self.staged[(s.key, s.rel)]
            if s.new:
                ino = self._ino_of.pop((s.key, s.rel), None)
                if ino is not None:
                    self._path_of.pop(ino, None)
        if s.fd >= 0:
            os.close(s.fd)
            s.fd = -1
        self.staging.remove(s.sid)
        self.staging.release(s.size)

    # -- judgement and commit ----------------------------------------------------
    async def judge_and_commit(self, s: Staged, sync: bool = False) -> None:
        """Judge the staged content if it changed, and commit it if cleared. sync (the
        writer called fsync): the committed file is synced to the medium before this returns."""
        async with s.lock:
            if s.unlinked:
                return          # unlinked while open: nothing to commit, as on any fs
            if s.gone or s.freed:
                raise pyfuse3.FUSEError(errno.EIO)
            if s.failed:
                raise pyfuse3.FUSEError(s.failed)
            m = self.media.get(s.key)
            if not s.pending():
                if sync and m is not None and m.state != "gone":
                    await trio.to_thread.run_sync(self._sync_committed, m, s.rel)
                return
            if m is None or m.state == "gone":
                raise pyfuse3.FUSEError(errno.EIO)
            m.busy += 1
            try:
                await self._judge_and_commit_locked(m, s, sync)
            finally:
                m.busy -= 1

    async def _judge_and_commit_locked(self, m: Medium, s: Staged, sync: bool = False) -> None:
        t0 = time.monotonic()
        gen = s.gen
        was_new = s.new
        judge = s.needs_judgement()
        if judge:
            s.state = CLOSED
            if self.staging.durable:
                await trio.to_thread.run_sync(os.fsync, s.fd)   # the record must not outlive its data
            self._record(s)         # complete content, not yet committed
        elif s.refusal is not None:
            raise pyfuse3.FUSEError(s.refusal)
        # the hidden name derives from the staging id, so recovery can find and remove it
        tmp_rel = _child(os.path.dirname(s.rel), COMMIT_PREFIX + s.sid[:16])
        args = (m, s, tmp_rel, self.gw.fsync_commits or sync)
        staged = self._staged_file(s)
        if s.size <= SMALL:
            # verdict, copy and rename in one thread hop: for small files the hops cost
            # more than the work
            verdict, outcome = await trio.to_thread.run_sync(self._judge_copy_rename, staged if judge else None,
                                                             *args)
        else:
            verdict = await self.gw.call_judge(staged) if judge else None
            outcome = None
            if verdict is None or verdict.commit:
                outcome = await trio.to_thread.run_sync(self._copy_rename, *args)
        if verdict is not None:
            s.judged_gen = gen
            s.refusal = None if verdict.commit else (verdict.errno or errno.EACCES)
            if s.refusal is not None:
                if not s.new and self._placeholders.pop((s.key, s.rel)) is not None:
                    await trio.to_thread.run_sync(self._remove_placeholder, m, s)
                await self.gw.emit("gateway.refused", {"key": s.key, "path": s.rel, "size": s.size, "pid": s.pid,
                                                       "uid": s.uid, "reason": verdict.reason})
                raise pyfuse3.FUSEError(s.refusal)
        if outcome == "unlinked":
            return
        if isinstance(outcome, OSError):
            s.commit_error_gen = gen
            await self.gw.medium_error(m, outcome)
            raise _err(outcome)
        if outcome == "gone":
            raise pyfuse3.FUSEError(errno.EIO)
        s.new = False
        s.committed_gen = gen
        m.committed += 1
        if was_new and s.size == 0:
            self._placeholders.note((s.key, s.rel))
        self._committed.note((s.key, s.rel), s.size)
        await self.gw.emit("gateway.committed", {"key": s.key, "path": s.rel, "size": s.size, "pid": s.pid,
                                                 "uid": s.uid, "ms": round((time.monotonic() - t0) * 1000, 1)})
        if s.handles:
            s.state = COMMITTED
            self.staging.remove_record(s.sid)   # nothing left to recover; a later write records again
        else:
            self.drop(s)      # committed and nobody has it open: the host copy can go

    def _judge_copy_rename(self, staged: StagedFile | None, m: Medium, s: Staged, tmp_rel: str,
                           fsync: bool) -> tuple[Judgement | None, Any]:
        verdict = self.gw.judge_now(staged) if staged is not None else None
        if verdict is not None and not verdict.commit:
            return verdict, None
        return verdict, self._copy_rename(m, s, tmp_rel, fsync)

    def _copy_rename(self, m: Medium, s: Staged, tmp_rel: str, fsync: bool) -> Any:
        """In a worker thread: copy to the hidden name, fsync, rename over the target.
        Returns None (committed), "unlinked", "gone" or the OSError."""
        try:
            copy_phase(m.root_fd, tmp_rel, s.rel, s.fd, s.size, s.new, s.mode, s.uid, s.gid, s.times, fsync,
                       owners=m.fstype not in OWNERLESS)
            with m.ns_lock:
                if m.state == "gone" or s.gone or s.unlinked:
                    remove_quietly(m.root_fd, tmp_rel)
                    return "unlinked" if s.unlinked else "gone"
                rename_phase(m.root_fd, tmp_rel, s.rel, fsync)
        except OSError as e:
            remove_quietly(m.root_fd, tmp_rel)
            return e
        return None

    @staticmethod
    def _remove_placeholder(m: Medium, s: Staged) -> None:
        """The refused content was to fill an empty file committed moments ago by the same
        kind of write: remove that empty shell too, so the refused document leaves no name
        on the medium and an application copying it from there fails instead of copying
        nothing. From then on the file lives in staging only, like any new refused file."""
        with m.ns_lock:
            try:
                if os.stat(s.rel, dir_fd=m.root_fd, follow_symlinks=False).st_size == 0:
                    os.unlink(s.rel, dir_fd=m.root_fd)
                    s.new, s.committed_gen = True, -1
            except OSError:
                pass

    @staticmethod
    def _sync_committed(m: Medium, rel: str) -> None:
        try:
            fd = os.open(rel, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=m.root_fd)
        except OSError as e:
            raise _err(e)
        try:
            os.fsync(fd)
        except OSError as e:
            raise _err(e)
        finally:
            os.close(fd)

    def _staged_file(self, s: Staged, medium_gone: bool = False) -> StagedFile:
        return StagedFile(key=s.key, relpath=s.rel, host_path=self.staging.data_path(s.sid), size=s.size,
                          pid=s.pid, uid=s.uid, gid=s.gid, medium_gone=medium_gone,
                          complete=s.state != OPEN, recovered=s.recovered)

    # -- the medium vanished ---------------------------------------------------------
    def mark_gone(self, m: Medium) -> list[Staged]:
        m.state = "gone"
        out = []
        for (k, _), s in list(self.staged.items()):
            if k == m.key and not s.freed:
                s.gone = True
                out.append(s)
        return out
