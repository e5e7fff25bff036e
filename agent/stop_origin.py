"""Who stopped the agent, and how, for `agent.stopped`.

SIGTERM and SIGINT are taken with sigtimedwait, whose siginfo names the sending
process (si_pid, si_uid). `systemctl stop` makes systemd (pid 1) the sender, so the
agent also looks, while the stop is under way, for the `systemctl` client that asked
for it: it waits for the job, so it is still running, and /proc tells its user, its
login uid (set at login, kept across sudo and su) and the SUDO_USER sudo gave it.
A local root can hide all of this (kill -9, an edited /proc view, a stopped audit);
this is a trace for the honest majority of cases, not a proof.
"""
from __future__ import annotations

import os
import pwd
import signal
from pathlib import Path
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
UNIT = "baomi-agent"
_STOPPING_VERBS = {"stop", "restart", "try-restart", "kill", "isolate", "mask", "disable", "reload-or-restart"}
_NO_LOGINUID = 4294967295  # (uid_t)-1: the process never logged in (a daemon, or pid 1)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _user(uid: int | None) -> str | None:
    if uid is None or uid == _NO_LOGINUID:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def process(pid: int, proc: Path = Path("/proc")) -> dict[str, Any] | None:
    """What /proc says about one process (None once it is gone)."""
    base = proc / str(pid)
    cmdline = _read(base / "cmdline")
    if cmdline is None:
        return None
    status = (_read(base / "status") or b"").decode(errors="replace")
    uid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")), None)
    raw_login = (_read(base / "loginuid") or b"").strip()
    loginuid = int(raw_login) if raw_login.isdigit() else None
    env = dict(item.split(b"=", 1) for item in (_read(base / "environ") or b"").split(b"\0") if b"=" in item)
    sudo_user = env.get(b"SUDO_USER")
    info: dict[str, Any] = {
        "pid": pid, "cmdline": " ".join(a.decode(errors="replace") for a in cmdline.split(b"\0") if a)[:300],
        "uid": uid, "user": _user(uid),
    }
    if loginuid is not None and loginuid != _NO_LOGINUID:
        info["login_user"] = _user(loginuid)
    if sudo_user:
        info["sudo_user"] = sudo_user.decode(errors="replace")[:64]
    return info


def _asks_to_stop(argv: list[str]) -> bool:
    if not argv or os.path.basename(argv[0]) != "systemctl":
        return False
    args = argv[1:]
    return bool(_STOPPING_VERBS & set(args)) and any(a == UNIT or a.startswith(UNIT + ".") for a in args)


def systemctl_requests(proc: Path = Path("/proc")) -> list[dict[str, Any]]:
    """The running `systemctl stop|restart|kill … baomi-agent` clients."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        cmdline = _read(entry / "cmdline")
        if cmdline and _asks_to_stop([a.decode(errors="replace") for a in cmdline.split(b"\0") if a]):
            info = process(int(entry.name), proc)
            if info:
                found.append(info)
    return found


def describe(info: Any | None, proc: Path = Path("/proc")) -> dict[str, Any]:
    """The details of agent.stopped for a stop signal's siginfo (None: stopped from inside,
    or by a signal that reached a thread other than the waiting one)."""
    if info is None:
        return {"how": "requested"}
    out: dict[str, Any] = {"how": "signal", "signal": signal.Signals(info.si_signo).name,
                           "sender_pid": info.si_pid, "sender_uid": info.si_uid,
                           "sender_user": _user(info.si_uid)}
    sender = process(info.si_pid, proc) if info.si_pid else None
    if sender:
        out["sender"] = sender
    if info.si_pid == 1:  # systemd: the one who asked it is a systemctl client
        out["how"] = "service manager"
        requests = systemctl_requests(proc)
        if requests:
            out["how"] = "systemctl"
            out["requested_by"] = requests[:5]
    # the person: sudo's user, else the login user, else the process's own user
    people = out.get("requested_by") or ([sender] if sender and info.si_pid != 1 else [])
    for r in people:
        by = r.get("sudo_user") or r.get("login_user") or r.get("user")
        if by:
            out["by"] = by
            break
    return out


def block_stop_signals() -> set[signal.Signals]:
    """Before any thread starts: they inherit the mask, so the stop signals queue for
    wait_for_stop instead of running a handler that cannot see the sender. Returns the
    previous mask, for signal.pthread_sigmask(signal.SIG_SETMASK, …)."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def wait_for_stop(stopping: Any, tick: float = 1.0) -> Any | None:
    """Until a stop signal arrives (its siginfo) or `stopping` (an Event) is set (None)."""
    while not stopping.is_set():
        info = signal.sigtimedwait(STOP_SIGNALS, tick)
        if info is not None:
            return info
    return None
