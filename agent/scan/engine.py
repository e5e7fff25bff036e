"""The scanner: a pool of persistent worker processes (agent/scan/worker.py),
each under a memory cap, with a time budget per file. A worker that overruns
is killed and replaced; its file gets inspectable=false (timeout or
limit_exceeded). scan_file is thread-safe: the daemon calls it from several
threads; scan_paths walks folders and keeps all workers busy.

A scanner whose rules come from the configuration (the daemon's) notices a new
central rules document kept in state_dir (rules.rules_stamp) before each file,
loads its rules again and bumps `generation`; each worker process holds the rules it
was started with, so a worker of an older generation is retired when it comes back
to the pool and the next file goes to a fresh one. Nothing is swapped under a
running scan; Verdicts (agent/enforce/verdicts.py) drops its cache on a new generation."""
from __future__ import annotations

import json
import logging
import os
import queue
import stat
import subprocess
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator

from .limits import Limits
from .opening import open_for_scan
from .sandbox import Identity, note_worker, worker_identity
from .spawn import Started, start_worker
from .verdict import Verdict
from multiprocessing.connection import Connection
from multiprocessing.reduction import send_handle

log = logging.getLogger(__name__)

STARTUP_S = 60.0  # a fresh interpreter importing the extractors; generous on a loaded machine
MAX_ANSWER_BYTES = 16 << 20   # a verdict with MAX_EVIDENCE items fits many times over


class _Worker:
    """A worker process (spawn.py) over a socket pair: settings and jobs go to it as
    pickles, each file as an open descriptor, and its answers come back as checked
    JSON. It becomes identity (agent/scan/sandbox.py) once it has loaded what it needs."""

    def __init__(self, limits: Limits, ruleset: Any, memory_mb: int, nice: int = 0, idle_io: bool = False,
                 identity: Identity | None = None, started: Started | None = None):
        """started: a process from spawn.start_worker() to give these settings to;
        by default one is started now."""
        started = started or start_worker()
        self.proc = started.proc
        if nice:
            try:  # set from outside: no preexec_fn in a threaded daemon
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, nice)
            except OSError as exc:  # e.g. a higher priority asked without privilege: scan anyway
                log.warning("scanner worker %d stays at its priority (nice %d refused: %s)", self.proc.pid, nice, exc)
        if idle_io:
            try:
                import psutil
                psutil.Process(self.proc.pid).ionice(psutil.IOPRIO_CLASS_IDLE)
            except Exception as exc:  # the kernel's scheduler may not support it: scan anyway
                log.info("scanner worker %d keeps its I/O priority (%s)", self.proc.pid, exc)
        self.conn = Connection(started.take().detach())
        self.generation = 0   # of the scanner's rules it was started with
        try:   # a process started earlier may have died meanwhile: the send then fails
            self.conn.send((limits, ruleset, memory_mb, identity))
            ready = self.answer() if self.conn.poll(STARTUP_S) else None
        except (EOFError, OSError, ValueError):
            ready = None
        if not (isinstance(ready, dict) and ready.get("ready") is True and type(ready.get("uid")) is int):
            self.kill()
            raise RuntimeError(f"the scanning process did not start within {STARTUP_S} s")
        self.uid = ready["uid"]
        for what in note_worker(identity, self.uid, ready.get("refused")):  # once per process
            log.warning("scanner workers are less confined than they should be: %s", what)

    def answer(self) -> Any:
        """The worker's next message: JSON of bounded size, never a pickle (it parses
        hostile documents; unpickling would run whatever it sent). Raises ValueError
        for anything else, OSError when the worker is gone."""
        try:
            data = self.conn.recv_bytes(MAX_ANSWER_BYTES)
        except OSError as exc:
            if str(exc) == "bad message length":     # multiprocessing's word for over maxlength
                raise ValueError(f"an answer over {MAX_ANSWER_BYTES} bytes") from None
            raise
        return json.loads(data)

    def send(self, path: str, sha256: str | None, fd: int) -> None:
        """One file to scan: its name (for the verdict) and a descriptor of it."""
        self.conn.send((path, sha256))
        send_handle(self.conn, fd, self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            self.conn.close()

    def ask_to_stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass

    def stop(self) -> None:
        try:
            self.ask_to_stop()
            # its socket closes as it exits: Popen.wait(timeout) alone polls in sleeps of up
            # to 50 ms, which a short scan pays for every worker
            self.conn.poll(2)
            self.proc.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(2)
        self.conn.close()


class Scanner:
    def __init__(self, config: Any, ruleset: Any = None, jobs: int | None = None, nice: int = 0,
                 idle_io: bool = False, prestarted: Iterable[Started] = ()):
        """config: the agent configuration ([scan] and the state folder); ruleset:
        by default RuleSet.for_config(config), as everywhere else; nice: CPU
        priority of the worker processes (the daemon yields to the user's own work);
        idle_io: the workers read only when the disk is otherwise idle (discovery);
        prestarted: worker processes already loading their libraries (spawn.py), taken
        before any new one is started; those not needed are stopped on close."""
        from .rules import rules_stamp
        self._from_config = ruleset is None
        self._stamp = rules_stamp(config) if self._from_config else None
        if ruleset is None:
            from .rules import RuleSet
            ruleset = RuleSet.for_config(config)
        scan_cfg = config.scan
        self.config = config
        self.ruleset = ruleset
        self.generation = 0
        self._rules_lock = threading.Lock()
        self.limits = Limits.from_config(scan_cfg)
        self.timeout_s = float(scan_cfg.timeout_s)
        self.memory_mb = int(scan_cfg.memory_mb)
        self.jobs = max(1, int(jobs or scan_cfg.jobs))
        self.nice = nice
        self.idle_io = idle_io
        self.identity = worker_identity(scan_cfg.worker_user)
        self._fp_stamp = _file_stamp(ruleset.fingerprint_db)
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._prestarted = list(prestarted)
        for _ in range(self.jobs):
            self._idle.put(None)  # a slot; the worker process starts on first use

    def __enter__(self) -> "Scanner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rules_generation(self) -> int:
        """The generation of the rules new scans use: loads them again first when the kept
        central rules document changed (a rule set that no longer loads keeps the old one)."""
        fp_stamp = _file_stamp(self.ruleset.fingerprint_db)
        if fp_stamp != self._fp_stamp:
            with self._rules_lock:
                if fp_stamp != self._fp_stamp:
                    # workers read the database before they give up their privileges:
                    # fresh ones see the change
                    self._fp_stamp = fp_stamp
                    self.generation += 1
        if not self._from_config:
            return self.generation
        from .rules import RuleError, RuleSet, rules_stamp
        stamp = rules_stamp(self.config)
        if stamp == self._stamp:
            return self.generation
        with self._rules_lock:
            if stamp != self._stamp:
                try:
                    ruleset = RuleSet.for_config(self.config)
                except RuleError as exc:
                    log.error("rules not reloaded, the running ones stay: %s", exc)
                else:
                    self.ruleset = ruleset
                    self.generation += 1
                    log.info("scanner rules reloaded (central rules version %d, generation %d)",
                             ruleset.central_version, self.generation)
                self._stamp = stamp
        return self.generation

    def _new_worker(self) -> _Worker:
        # the generation read before the rules: a reload in between makes the worker look
        # older than its rules (retired early), never newer
        generation = self.generation
        with self._lock:
            started = self._prestarted.pop() if self._prestarted else None
        args = (self.limits, self.ruleset, self.memory_mb, self.nice, self.idle_io, self.identity)
        try:
            w = _Worker(*args, started=started)
        except RuntimeError:
            if started is None:
                raise
            w = _Worker(*args)      # the one started early died meanwhile: a fresh one
        w.generation = generation
        with self._lock:
            self._all.add(w)
        return w

    def _drop(self, w: _Worker) -> None:
        with self._lock:
            self._all.discard(w)
        w.kill()

    def scan_file(self, path: str | os.PathLike[str], sha256: str | None = None) -> Verdict:
        """The verdict on one file; never raises for a bad file. sha256: the
        content's hash if the caller already computed it (the worker then does
        not hash the file again and reports this one)."""
        if self._closed:
            raise RuntimeError("scanner is closed")
        path = os.fspath(path)
        generation = self.rules_generation()
        opened = open_for_scan(path)     # with the agent's privileges, which the worker lacks
        if isinstance(opened, Verdict):
            return opened
        w = self._idle.get()
        try:
            if w is not None and w.generation != generation:   # started with older rules
                with self._lock:
                    self._all.discard(w)
                w.stop()
                w = None
            if w is None or not w.alive():
                if w is not None:
                    self._drop(w)
                w = self._new_worker()
            try:
                try:
                    w.send(path, sha256, opened)
                finally:
                    os.close(opened)
                    opened = -1
                if w.conn.poll(self.timeout_s):
                    try:
                        answer = w.answer()
                        verdict = Verdict.from_worker(answer["verdict"], path)
                        retire = answer["retire"] is not False
                    except (ValueError, KeyError, TypeError) as exc:
                        log.error("scanner worker %d sent an invalid verdict for %s, replaced: %s",
                                  w.proc.pid, path, exc)
                        self._drop(w)
                        w = None
                        return _failed(path, "corrupt", f"the scanning process sent an invalid verdict ({exc})"[:300])
                    if retire:
                        self._drop(w)
                        w = None
                    return verdict
                self._drop(w)
                w = None
                return _failed(path, "timeout", f"not finished within timeout_s={self.timeout_s:g}")
            except (EOFError, OSError, BrokenPipeError):
                code = w.proc.poll() if w is not None else None
                if w is not None:
                    self._drop(w)
                w = None
                return _failed(path, "limit_exceeded",
                               f"the scanning process died (exit {code}); memory_mb={self.memory_mb} or a parser crash")
        finally:
            if opened >= 0:
                os.close(opened)
            self._idle.put(w)

    def scan_paths(self, paths: Iterable[str | os.PathLike[str]],
                   progress: Callable[[Verdict], None] | None = None) -> Iterator[Verdict]:
        """Verdicts for every file under paths (folders recursively, symbolic
        links reported but not followed), scanned by all workers in parallel,
        in the order they finish."""
        def report(v: Verdict) -> Verdict:
            if progress:
                progress(v)
            return v

        with ThreadPoolExecutor(self.jobs, thread_name_prefix="baomi-scan") as pool:
            pending: set[Future[Verdict]] = set()
            for f in walk(paths):
                if isinstance(f, Verdict):
                    yield report(f)
                    continue
                pending.add(pool.submit(self.scan_file, f))
                if len(pending) >= self.jobs * 4:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        yield report(fut.result())
            for fut in list(pending):
                yield report(fut.result())

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
            unused, self._prestarted = self._prestarted, []
        for p in unused:
            p.discard()
        for w in workers:  # all at once: each takes a moment to exit
            w.ask_to_stop()
        for w in workers:
            w.stop()


def _file_stamp(path: Any) -> tuple[int, int] | None:
    """(mtime, size) of the file at path; None when there is none."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _failed(path: str, reason: str, detail: str) -> Verdict:
    try:
        size = os.lstat(path).st_size
    except OSError:
        size = 0
    return Verdict(path=path, inspectable=False, reason=reason, detail=detail, size=size)


def walk(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str | Verdict]:
    """Files under paths; symbolic links met inside folders are reported (a
    Verdict), never followed, so a link loop cannot trap the walk. A path given
    directly that is a link to a file is followed (the user named it)."""
    for top in paths:
        top = os.fspath(top)
        try:
            st = os.stat(top)
        except OSError as exc:
            yield _failed(top, "vanished" if isinstance(exc, FileNotFoundError) else "unreadable",
                          exc.strerror or str(exc))
            continue
        if not stat.S_ISDIR(st.st_mode):
            yield os.path.realpath(top) if os.path.islink(top) else top
            continue
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                yield _failed(folder, "unreadable", f"cannot list folder: {exc.strerror}")
                continue
            subdirs = []
            for e in entries:
                if e.is_symlink():
                    yield Verdict(path=e.path, inspectable=False, reason="unsupported",
                                  detail="a symbolic link (not followed)", type="inode/symlink")
                elif e.is_dir(follow_symlinks=False):
                    subdirs.append(e.path)
                else:
                    yield e.path
            stack.extend(reversed(subdirs))


def file_count(paths: Iterable[str | os.PathLike[str]]) -> tuple[int, int]:
    """(files, bytes) under paths, for a progress bar."""
    n = size = 0
    for p in walk(paths):
        if isinstance(p, str):
            n += 1
            try:
                size += os.lstat(p).st_size
            except OSError:
                pass
    return n, size
