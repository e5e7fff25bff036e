"""Outside probes: a TCP connect to HOST:PORT, or a DNS lookup of NAME, that only the outside
world answers. A success means this host reaches beyond the site (违规外联)."""
from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    text: str                      # as configured
    host: str
    port: int | None               # None: a DNS lookup only


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    ok: bool
    address: str | None = None     # what answered (or what the name resolved to)
    local_address: str | None = None
    error: str | None = None


def parse_probe(text: str) -> Probe:
    """"example.org:443", "198.51.100.7:80", "[2001:db8::7]:443" or a bare "outside.example.org"."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{text!r}: an IPv6 probe is written [ADDRESS]:PORT")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    elif ":" in text:
        raise ValueError(f"{text!r}: an IPv6 probe is written [ADDRESS]:PORT")
    else:
        host, port = text, ""
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"{text!r}: expected HOST:PORT or a DNS name")
    if not port:
        if _is_ip(host):
            raise ValueError(f"{text!r}: an address needs a port (ADDRESS:PORT)")
        return Probe(text, host, None)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: the port must be 1-65535")
    return Probe(text, host, int(port))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def run_probe(probe: Probe, timeout_s: float) -> ProbeResult:
    try:
        infos = socket.getaddrinfo(probe.host, probe.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return ProbeResult(probe, False, error=f"resolve: {exc}")
    if probe.port is None:
        return ProbeResult(probe, True, address=infos[0][4][0])
    errors = []
    for family, type_, proto, _, addr in infos:
        with socket.socket(family, type_, proto) as s:
            s.settimeout(timeout_s)
            try:
                s.connect(addr)
                return ProbeResult(probe, True, address=addr[0], local_address=s.getsockname()[0])
            except OSError as exc:
                errors.append(f"{addr[0]}: {exc.strerror or exc}")
    return ProbeResult(probe, False, error="; ".join(errors) or "no address")


class Prober:
    """Runs every probe at once, each bounded by the timeout (a resolver that hangs counts as a
    failure; its thread is left to finish on its own)."""

    def __init__(self, probes: list[Probe], timeout_s: float) -> None:
        self.probes, self.timeout_s = probes, timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(2, 2 * len(probes)),
                                                           thread_name_prefix="posture-probe")

    def run(self) -> list[ProbeResult]:
        futures = [(p, self._pool.submit(run_probe, p, self.timeout_s)) for p in self.probes]
        out = []
        for p, f in futures:
            try:
                out.append(f.result(timeout=self.timeout_s + 1.0))
            except concurrent.futures.TimeoutError:
                out.append(ProbeResult(p, False, error="timed out"))
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
