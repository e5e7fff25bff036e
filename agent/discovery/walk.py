"""The files discovery looks at: regular files under the configured paths, with excluded
folders pruned (never entered) and symbolic links never followed."""
from __future__ import annotations

import os
import stat
from fnmatch import fnmatch
from typing import Iterable, Iterator


def excluded(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch(path, p) for p in patterns)


def regular_files(tops: Iterable[str | os.PathLike[str]], exclude: Iterable[str] = ()
                  ) -> Iterator[tuple[str, os.stat_result]]:
    """(path, lstat) of every regular file; unreadable folders are skipped (a user's private
    folder the agent cannot list is not an error worth a pass failing)."""
    patterns = tuple(exclude)
    stack = [os.fspath(t) for t in reversed(list(tops))]
    while stack:
        folder = stack.pop()
        if excluded(folder, patterns):
            continue
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except NotADirectoryError:
            try:
                st = os.lstat(folder)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield folder, st
            continue
        except OSError:
            continue
        subdirs = []
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(e.path)
            elif stat.S_ISREG(st.st_mode) and not excluded(e.path, patterns):
                yield e.path, st
        stack.extend(reversed(subdirs))
