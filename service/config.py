"""collector.toml: the collector's configuration (docs/collector.md)."""
from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from baomi.common.tomlconf import ConfigError, build, read_toml, resolve_paths

from . import db


@dataclass
class TLSSection:
    cert: Path | None = None
    key: Path | None = None


@dataclass
class SyslogSection:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 6514
    tls: bool = False
    ca: Path | None = None
    app_name: str = "baomi"


@dataclass
class ConsoleSection:
    session_ttl_s: int = 1800
    max_failed_logins: int = 5              # per account, then locked for lockout_s
    max_failed_logins_per_address: int = 30  # per source address within lockout_s, then locked for lockout_s
    lockout_s: int = 900
    secret_key_file: Path | None = None  # default: a key in the database, shared by all collectors
    time_zone: str = ""   # the office's zone, an IANA name ("Asia/Shanghai"); default: the server's own

    def validate(self, file: str | Path, prefix: str) -> None:
        if self.time_zone:
            try:
                zoneinfo.ZoneInfo(self.time_zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ConfigError(file, f"{prefix}.time_zone" if prefix else "time_zone",
                                  f"{self.time_zone!r} is not a time zone name (expected an IANA name "
                                  "such as \"Asia/Shanghai\"; see /usr/share/zoneinfo)") from None


@dataclass
class CollectorConfig:
    listen: str = "127.0.0.1:8443"
    database_url: str | None = None
    state_dir: Path = Path("/var/lib/baomi-collector")
    max_batch_bytes: int = 8 * 1024 * 1024
    max_event_bytes: int = 256 * 1024
    max_enroll_bytes: int = 64 * 1024      # body cap of /api/v1/enroll
    max_form_bytes: int = 256 * 1024       # body cap of every other request (console forms)
    token_ttl_s: int = 24 * 3600
    offline_after_s: int = 150
    max_clock_skew_s: int = 300   # the console marks events whose agent time is further from their receipt
    tls: TLSSection = field(default_factory=TLSSection)
    syslog: SyslogSection = field(default_factory=SyslogSection)
    console: ConsoleSection = field(default_factory=ConsoleSection)
    source: Path | None = field(default=None, metadata={"internal": True})

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return self.database_url or db.default_sqlite_url(self.state_dir)

    def validate(self, file: str | Path, prefix: str) -> None:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(file, "listen", f"expected HOST:PORT, got {self.listen!r}")
        if (self.tls.cert is None) != (self.tls.key is None):
            raise ConfigError(file, "tls", "set both cert and key, or neither")
        for name in ("max_batch_bytes", "max_event_bytes", "max_enroll_bytes", "max_form_bytes"):
            if getattr(self, name) < 1024:
                raise ConfigError(file, name, f"must be at least 1024 bytes, got {getattr(self, name)}")
        loopback = host.strip("[]") in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
        if self.tls.cert is None and not loopback:
            raise ConfigError(file, "tls", f"plain HTTP is allowed only on loopback; listen={self.listen!r} "
                              "needs [tls] cert and key")


def load(path: str | Path) -> CollectorConfig:
    cfg = build(CollectorConfig, read_toml(path), path)
    cfg.source = Path(path)
    resolve_paths(cfg, Path(path).resolve().parent)
    return cfg
