"""USB storage history for the 保密自查 report: every USB storage device this host ever saw,
from the kernel's own messages (the journal's `journalctl -o export` stream and the classic
/var/log/kern.log*, rotated and gzipped ones included), so devices plugged in before baomi was
installed show up too, merged with the agent's own medium.inserted records.

The kernel announces a device on a port (`usb 1-1: New USB device found, idVendor=0781, …`),
then its strings (`Product:`, `Manufacturer:`, `SerialNumber:`), and a storage driver binding
one of its interfaces (`usb-storage 1-1:1.0: USB Mass Storage device detected`, or `uas`) is
what makes it storage. A keyboard on the same port is not reported."""
from __future__ import annotations

import datetime as dt
import glob
import gzip
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

# "usb 1-1.2: …" (the kernel's usb core); "usb-storage 1-1.2:1.0: …" or "uas 2-1:1.0: …" (the drivers)
_CORE = re.compile(r"\busb (\d+-[\d.]+): (.*)$")
_STORAGE = re.compile(r"\b(?:usb-storage|uas) (\d+-[\d.]+):\d+\.\d+: ")
# UAS names no port ("scsi host7: uas"): it is the device announced last
_UAS_HOST = re.compile(r"\bscsi host\d+: uas$")
_NEW = re.compile(r"New USB device found, idVendor=([0-9a-fA-F]{4}), idProduct=([0-9a-fA-F]{4})")
_STRING = re.compile(r"^(Product|Manufacturer|SerialNumber): (.*)$")
_DISCONNECT = re.compile(r"^USB disconnect")
# classic syslog "Mar  4 10:11:12 host kernel: …" (no year) and RFC 3339 "2025-03-04T10:11:12.5+08:00 host kernel: …"
_CLASSIC = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) \S+ kernel: (.*)$")
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) \S+ kernel: (.*)$")
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


@dataclass
class Device:
    vendor_id: str
    product_id: str
    serial: str = ""
    product: str = ""
    manufacturer: str = ""
    first_seen: str = ""     # UTC, ISO 8601
    last_seen: str = ""
    times_seen: int = 0
    sources: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str, str]:
        # without a serial, vendor and product are all there is to tell devices apart
        return (self.vendor_id.lower(), self.product_id.lower(), self.serial or f"?{self.product}")

    def to_json(self) -> dict[str, Any]:
        return {"vendor_id": self.vendor_id, "product_id": self.product_id, "serial": self.serial,
                "product": self.product, "manufacturer": self.manufacturer, "first_seen": self.first_seen,
                "last_seen": self.last_seen, "times_seen": self.times_seen, "sources": sorted(self.sources)}


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def kernel_storage(messages: Iterable[tuple[str, str]], source: str) -> Iterator[Device]:
    """(time, kernel message) in order → one Device per storage device plugged in."""
    ports: dict[str, Device] = {}
    storage: set[str] = set()
    last_port = ""
    for when, msg in messages:
        m = _STORAGE.search(msg)
        port = m.group(1) if m else (last_port if _UAS_HOST.search(msg) else "")
        if port:
            if port in ports and port not in storage:
                storage.add(port)
                yield ports[port]
            continue
        m = _CORE.search(msg)
        if not m:
            continue
        port, rest = m.groups()
        new = _NEW.search(rest)
        if new:  # a new device on this port: whatever was there before has gone
            ports[port] = Device(new.group(1).lower(), new.group(2).lower(), first_seen=when, last_seen=when,
                                 times_seen=1, sources={source})
            storage.discard(port)
            last_port = port
        elif port in ports and (s := _STRING.match(rest)):
            attr = {"Product": "product", "Manufacturer": "manufacturer", "SerialNumber": "serial"}[s.group(1)]
            setattr(ports[port], attr, s.group(2).strip())
        elif _DISCONNECT.match(rest):
            if port in ports:
                ports.pop(port).last_seen = when  # last seen: when it was pulled out
            storage.discard(port)


def syslog_messages(lines: Iterable[str], year: int, tz: dt.tzinfo | None = None) -> Iterator[tuple[str, str]]:
    """Kernel lines of a classic syslog file. Its time stamps carry no year or zone: `year` is the
    file's (from its mtime) and the local zone applies; a month after the file's own is last year's."""
    zone = tz or dt.datetime.now().astimezone().tzinfo
    for line in lines:
        line = line.rstrip("\n")
        m = _RFC3339.match(line)
        if m:
            yield _iso(dt.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))), m.group(2)
            continue
        m = _CLASSIC.match(line)
        if not m or m.group(1) not in _MONTHS:
            continue
        t = dt.datetime(year, _MONTHS[m.group(1)], int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)),
                        tzinfo=zone)
        yield _iso(t), m.group(6)


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:  # type: ignore[operator]
        yield from f


def _year_fixed(messages: Iterator[tuple[str, str]], mtime: float) -> Iterator[tuple[str, str]]:
    """A line dated after the file was last written is from the year before (a log spanning New Year)."""
    limit = _iso(dt.datetime.fromtimestamp(mtime + 86400, dt.timezone.utc))
    for when, msg in messages:
        if when > limit:
            when = f"{int(when[:4]) - 1}{when[4:]}"
        yield when, msg


def from_kern_logs(patterns: Iterable[str]) -> tuple[list[Device], list[str]]:
    """Devices in the files matching `patterns`, oldest file first; and the files that could not be read."""
    devices, problems = [], []
    files = sorted({p for pat in patterns for p in glob.glob(pat)}, key=lambda p: (os.path.getmtime(p), p))
    for name in files:
        path = Path(name)
        try:
            mtime = path.stat().st_mtime
            year = dt.datetime.fromtimestamp(mtime).year
            msgs = _year_fixed(syslog_messages(_lines(path), year), mtime)
            devices += list(kernel_storage(msgs, f"kern.log:{path.name}"))
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            problems.append(f"{path}: {exc}")
    return devices, problems


def export_records(stream: IO[bytes]) -> Iterator[dict[str, str]]:
    """Entries of the journal export format: `KEY=value` lines, or for binary-safe fields `KEY`,
    a 64-bit little-endian length, the data and a newline; entries end with an empty line."""
    entry: dict[str, str] = {}
    while True:
        line = stream.readline()
        if not line:
            break
        if line == b"\n":
            if entry:
                yield entry
            entry = {}
            continue
        line = line.rstrip(b"\n")
        if b"=" in line:
            k, _, v = line.partition(b"=")
            entry[k.decode(errors="replace")] = v.decode(errors="replace")
        else:
            size = int.from_bytes(stream.read(8), "little")
            entry[line.decode(errors="replace")] = stream.read(size).decode(errors="replace")
            stream.read(1)
    if entry:
        yield entry


def journal_messages(stream: IO[bytes]) -> Iterator[tuple[str, str]]:
    """Kernel messages of an export stream, with their time (boots in the order the journal gives)."""
    for e in export_records(stream):
        if e.get("_TRANSPORT", "kernel") != "kernel" or "MESSAGE" not in e:
            continue
        try:
            t = dt.datetime.fromtimestamp(int(e["__REALTIME_TIMESTAMP"]) / 1e6, dt.timezone.utc)
        except (KeyError, ValueError):
            continue
        yield _iso(t), e["MESSAGE"]


def from_journal(files: Iterable[Path], run_journalctl: bool) -> tuple[list[Device], list[str]]:
    """Devices in export-format files and, if asked, in `journalctl _TRANSPORT=kernel -o export`
    (every boot the journal keeps, not only this one as `-k` would)."""
    devices, problems = [], []
    for path in files:
        try:
            with open(path, "rb") as f:
                devices += list(kernel_storage(journal_messages(f), f"journal:{Path(path).name}"))
        except OSError as exc:
            problems.append(f"{path}: {exc}")
    if run_journalctl:
        try:
            proc = subprocess.Popen(["journalctl", "_TRANSPORT=kernel", "-o", "export", "--no-pager"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as exc:
            problems.append(f"journalctl: {exc}")
        else:
            assert proc.stdout is not None
            with proc.stdout:
                devices += list(kernel_storage(journal_messages(proc.stdout), "journal"))
            proc.wait()
    return devices, problems


def from_agent(events: Iterable[dict[str, Any]]) -> list[Device]:
    """The agent's own medium.inserted records (USB media only: they carry vendor and product)."""
    out = []
    for e in events:
        m = e.get("medium") or {}
        if e.get("kind") == "medium.inserted" and m.get("vendor_id"):
            out.append(Device(m["vendor_id"].lower(), m.get("product_id", "").lower(), m.get("serial", ""),
                              m.get("product", ""), m.get("manufacturer", ""), e["time"][:19] + "Z",
                              e["time"][:19] + "Z", 1, {"agent"}))
    return out


def merge(sightings: Iterable[Device]) -> list[Device]:
    """One entry per device: first and last seen over all sources, how often it was plugged in.
    The journal and kern.log usually hold the same plug-ins: a sighting at a time already counted
    for that device is not counted again."""
    out: dict[tuple[str, str, str], Device] = {}
    times: dict[tuple[str, str, str], set[str]] = {}
    for d in sightings:
        cur = out.get(d.key)
        if cur is None:
            out[d.key] = cur = Device(d.vendor_id, d.product_id, d.serial, d.product, d.manufacturer,
                                      d.first_seen, d.last_seen, 0, set())
            times[d.key] = set()
        cur.product = cur.product or d.product
        cur.manufacturer = cur.manufacturer or d.manufacturer
        cur.first_seen = min(cur.first_seen, d.first_seen)
        cur.last_seen = max(cur.last_seen, d.last_seen)
        cur.sources |= d.sources
        if d.first_seen[:16] not in times[d.key]:  # same minute: the same plug-in seen twice
            times[d.key].add(d.first_seen[:16])
            cur.times_seen += 1
    return sorted(out.values(), key=lambda d: (d.first_seen, d.key))
