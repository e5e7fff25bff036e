"""How a file to be scanned is opened: by the agent, with its privileges, so that the
worker process that parses the content needs none (agent/scan/sandbox.py). The worker
is handed the open descriptor, never the path."""
from __future__ import annotations

import os
import re
import stat

from .verdict import Verdict

_FD_LINK = re.compile(r"/proc/(\d+|self)/fd/\d+")


def open_for_scan(path: str) -> int | Verdict:
    """A read-only descriptor of the regular file at path, or the Verdict that says why
    there is none. A descriptor's magic link (a file deleted or renamed since it was
    written) is followed; any other symbolic link is not."""
    v = Verdict(path=path)
    follow = bool(_FD_LINK.fullmatch(path))
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return fail(v, "vanished", "the file no longer exists")
    except OSError as exc:
        return fail(v, "unreadable", f"cannot stat: {exc.strerror}")
    v.size = st.st_size
    if stat.S_ISLNK(st.st_mode):
        return fail(v, "unsupported", "a symbolic link (not followed)", "inode/symlink")
    if not stat.S_ISREG(st.st_mode):
        return fail(v, "unsupported", "not a regular file (device, FIFO or socket)", "inode/special")
    try:
        # O_NONBLOCK: a FIFO swapped in after the stat does not hang the open
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW))
    except FileNotFoundError:
        return fail(v, "vanished", "the file disappeared before it was read")
    except OSError as exc:
        return fail(v, "unreadable", f"cannot open: {exc.strerror}")
    if not stat.S_ISREG(os.fstat(fd).st_mode):   # swapped between the stat and the open
        os.close(fd)
        return fail(v, "unsupported", "not a regular file (device, FIFO or socket)", "inode/special")
    return fd


def fail(v: Verdict, reason: str, detail: str, mime: str | None = None) -> Verdict:
    """v, marked not inspectable for reason."""
    v.inspectable, v.reason, v.detail = False, reason, detail
    if mime:
        v.type = mime
    return v
