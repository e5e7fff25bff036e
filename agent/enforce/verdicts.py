"""Verdicts for written content: cached by sha256, so unchanged content is never scanned twice."""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from typing import Protocol

from ..scan.verdict import Verdict

log = logging.getLogger(__name__)

TRANSIENT = ("timeout", "vanished", "unreadable")  # worth scanning again next time


class ScannerLike(Protocol):
    def scan_file(self, path: str, sha256: str | None = None) -> Verdict: ...


class VerdictCache:
    """sha256 -> verdict, least recently used first out."""

    def __init__(self, size: int = 20000):
        self._d: OrderedDict[str, Verdict] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, sha: str) -> Verdict | None:
        with self._lock:
            v = self._d.get(sha)
            if v is None:
                self.misses += 1
                return None
            self._d.move_to_end(sha)
            self.hits += 1
            return v

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def put(self, sha: str, v: Verdict) -> None:
        if not v.inspectable and v.reason in TRANSIENT:
            return
        with self._lock:
            self._d[sha] = v
            while len(self._d) > self._size:
                self._d.popitem(last=False)


class Verdicts:
    def __init__(self, scanner: ScannerLike, cache: VerdictCache | None = None):
        self.scanner = scanner
        self.cache = cache or VerdictCache()
        self._generation = self._rules_generation()

    def _rules_generation(self) -> int:
        gen = getattr(self.scanner, "rules_generation", None)
        return gen() if callable(gen) else 0

    def cached(self, sha: str) -> Verdict | None:
        """The cached verdict for this content, made with the rules the scanner runs now: a
        verdict made with older rules (a new central rules document) is forgotten."""
        generation = self._rules_generation()
        if generation != self._generation:
            self.cache.clear()
            self._generation = generation
            log.info("verdict cache cleared: the scanner's rules changed")
        return self.cache.get(sha)

    def for_content(self, fd: int, path: str | None, sha: str, size: int) -> Verdict:
        """The verdict for the content behind `fd`: by name first (the scanner may use it),
        through the agent's own descriptor when the name is gone (renamed, deleted, medium
        detached): the content is still there."""
        cached = self.cached(sha)
        if cached is not None:
            return cached
        by_fd = f"/proc/{os.getpid()}/fd/{fd}"
        v = self._scan(path or by_fd, size, sha)
        if path and not v.inspectable and v.reason in ("vanished", "unreadable"):
            v = self._scan(by_fd, size, sha)
        self.cache.put(sha, v)
        return v

    def _scan(self, target: str, size: int, sha: str) -> Verdict:
        try:
            return self.scanner.scan_file(target, sha)  # hashed once, by the caller
        except Exception as exc:
            log.warning("scanner failed on %s: %s", target, exc)
            return Verdict(path=target, inspectable=False, reason="unreadable", detail=str(exc),
                           size=size, sha256=sha)
