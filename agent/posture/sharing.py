"""What this host offers others: TCP listeners on non-loopback addresses, NFS exports and
Samba shares (002: 专用电脑不得设立共享)."""
from __future__ import annotations

import configparser
from pathlib import Path

import psutil

from ..decide.posture import Listener


def listeners() -> list[Listener]:
    """TCP sockets in LISTEN state in this network namespace, with the owning process's name."""
    out = set()
    for c in psutil.net_connections(kind="tcp"):
        if c.status != psutil.CONN_LISTEN or not c.laddr:
            continue
        name = ""
        if c.pid:
            try:
                name = psutil.Process(c.pid).name()
            except psutil.Error:
                pass
        out.add(Listener(c.laddr.ip, c.laddr.port, "tcp", name))
    return sorted(out, key=lambda l: (l.port, l.address))


def nfs_exports(exports: Path) -> list[dict[str, str]]:
    """Every export in /etc/exports and /etc/exports.d/*.exports: path and who may mount it."""
    files = [exports] + sorted((exports.parent / "exports.d").glob("*.exports"))
    out = []
    for f in files:
        try:
            text = f.read_text("utf-8", errors="replace")
        except OSError:
            continue
        for line in text.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith('"'):
                path, _, clients = line[1:].partition('"')
            else:
                path, _, clients = line.partition(" ")
            out.append({"type": "nfs", "path": path, "clients": " ".join(clients.split()), "file": str(f)})
    return out


def smb_shares(smb_conf: Path) -> list[dict[str, str]]:
    """Samba's shares: every section but [global], unless `available = no`."""
    parser = configparser.RawConfigParser(strict=False, comment_prefixes=("#", ";"),
                                          inline_comment_prefixes=(";",), interpolation=None)
    try:
        parser.read_string(smb_conf.read_text("utf-8", errors="replace"))
    except (OSError, configparser.Error):
        return []
    out = []
    for name in parser.sections():
        sec = parser[name]
        if name.lower() == "global" or sec.get("available", "yes").strip().lower() in ("no", "false", "0"):
            continue
        out.append({"type": "smb", "share": name, "path": sec.get("path", ""), "file": str(smb_conf)})
    return out
