"""agent.toml: the endpoint's configuration (documented in docs/configuration.md).

Each section is a dataclass; `load()` validates types and unknown keys through
tomlconf, so a mistake is reported with file, key and what was expected.
"""
from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from baomi.common.policy import WATERMARK_DEFAULT_LEVELS
from baomi.common.tomlconf import ConfigError, build, read_layers, resolve_paths
from .scan.sandbox import DEFAULT_USER as DEFAULT_WORKER_USER

DEFAULT_CONFIG = Path("/etc/baomi/agent.toml")
HostClass = Literal["classified", "unclassified"]


@dataclass
class HostSection:
    # 涉密计算机 (classified) or 非涉密计算机 (unclassified); see docs/policy.md
    class_: HostClass = "unclassified"
    name: str = field(default_factory=socket.gethostname)


@dataclass
class PathsSection:
    state_dir: Path = Path("/var/lib/baomi")


@dataclass
class MediaSection:
    extra_removable: list[str] = field(default_factory=list)
    registry: Path = Path("/etc/baomi/media.toml")
    # the security administrator's Ed25519 public key (PEM) that signs registrations
    registry_public_key: Path | None = None
    rescan_s: float = 30.0


@dataclass
class ScanSection:
    max_file_bytes: int = 200 * 1024 * 1024
    max_archive_bytes: int = 1024 * 1024 * 1024
    max_ratio: float = 200.0
    max_depth: int = 5
    max_members: int = 10000
    timeout_s: float = 30.0
    memory_mb: int = 512
    jobs: int = 1
    # whom the worker processes become before they parse anything (agent/scan/sandbox.py);
    # "" or "root" keeps root's privileges
    worker_user: str = DEFAULT_WORKER_USER
    # OCR of images and of PDF pages without a text layer (docs/formats.md)
    ocr: bool = True
    ocr_max_pixels: int = 50_000_000
    ocr_max_pages: int = 20
    ocr_timeout_s: float = 20.0
    ocr_languages: str = "chi_sim+eng"
    ocr_embedded: int = 5
    # rule folders read in order; later files override rules with the same id
    rule_dirs: list[Path] = field(default_factory=lambda: [Path("/etc/baomi/rules.d")])
    fingerprint_db: Path | None = None

    def validate(self, file: str | Path, prefix: str) -> None:
        for key in ("max_file_bytes", "max_archive_bytes", "max_depth", "max_members", "jobs", "memory_mb",
                    "ocr_max_pixels", "ocr_max_pages"):
            if getattr(self, key) < 1:
                raise ConfigError(file, f"{prefix}.{key}", "must be at least 1")
        if self.timeout_s <= 0 or self.max_ratio <= 1:
            raise ConfigError(file, f"{prefix}.timeout_s", "timeout_s must be > 0 and max_ratio > 1")
        if self.ocr_embedded < 0:
            raise ConfigError(file, f"{prefix}.ocr_embedded", "must be 0 (off) or more")
        if self.ocr_timeout_s <= 0:
            raise ConfigError(file, f"{prefix}.ocr_timeout_s", "must be > 0")
        if self.worker_user and not re.fullmatch(r"[a-z_][a-z0-9_.-]*\$?", self.worker_user):
            raise ConfigError(file, f"{prefix}.worker_user", "a user name such as baomi-scan, or \"\" for root")
        if not re.fullmatch(r"[a-z_]+(\+[a-z_]+)*", self.ocr_languages):
            raise ConfigError(file, f"{prefix}.ocr_languages", "Tesseract language names joined by +, e.g. chi_sim+eng")


@dataclass
class PolicySection:
    # overrides of the policy table, cell by rule id (docs/policy.md): "<host>.<medium class>.<level>" = action
    actions: dict[str, str] = field(default_factory=dict)
    # cells a central policy document does not change on this host: they keep the value
    # above (or the built-in default) whatever the security administrator publishes
    locked: list[str] = field(default_factory=list)

    def validate(self, file: str | Path, prefix: str) -> None:
        from baomi.common.policy import validate_overrides
        problem = validate_overrides(self.actions)
        if problem:
            raise ConfigError(file, f"{prefix}.actions", problem)
        from baomi.common.policy import known_rules
        for cell in self.locked:
            if cell not in known_rules():
                raise ConfigError(file, f"{prefix}.locked", f"{cell}: unknown policy rule (see docs/policy.md)")


@dataclass
class CentralSection:
    # the security administrator's Ed25519 public key (PEM) that signs central policy
    # documents; unset, the agent applies no central document (docs/policy.md)
    public_key: Path | None = None


@dataclass
class ApprovalsSection:
    # where users' `baomi-agent approvals request` / `baomi-session request` connect (docs/media.md 审批)
    socket: Path = Path("/run/baomi/request.sock")
    # this host's clock may be behind the collector's by this much: approvals expire this early
    clock_skew_s: float = 300.0
    # requests one user may make per hour (a flood is refused, not queued)
    per_user_per_hour: int = 20

    def validate(self, file: str | Path, prefix: str) -> None:
        if self.clock_skew_s < 0:
            raise ConfigError(file, f"{prefix}.clock_skew_s", "must not be negative")
        if self.per_user_per_hour < 1:
            raise ConfigError(file, f"{prefix}.per_user_per_hour", "must be at least 1")


@dataclass
class EnforceSection:
    # enforcement (its threads and scanning processes) runs below the user's own work, so a
    # `cp -r` to the medium keeps its speed and the checks use the CPU it leaves
    nice: int = 5
    # threads applying verdicts; 0 = twice [scan] jobs, at least 2 and at most 4
    workers: int = 0
    # hold written files on the host until scanned (docs/enforcement.md); off = after-write mode
    gateway: bool = True
    # per host class / medium class, e.g. {"classified.registered" = false}; unset cells follow `gateway`
    gateway_for: dict[str, bool] = field(default_factory=dict)
    # total size of files held for scanning at once; past it a write fails with ENOSPC
    staging_max_bytes: int = 4 * 1024 * 1024 * 1024
    # root-only runtime folder of the gateway: the media's real filesystems (real/) and its view (view/)
    gateway_root: Path = Path("/run/baomi/gateway")
    # fsync every staged file and every commit at close: survives a host power cut or a
    # stick pulled right after close(), at the cost of several syncs per file (slow on
    # real sticks). Off, a commit is as durable as a direct copy: `sync` or eject flushes it
    gateway_sync: bool = False

    def validate(self, file: str | Path, prefix: str) -> None:
        if not -20 <= self.nice <= 19:
            raise ConfigError(file, f"{prefix}.nice", f"must be a whole number from -20 to 19, got {self.nice}")
        if not 0 <= self.workers <= 64:
            raise ConfigError(file, f"{prefix}.workers", f"must be 0 (automatic) to 64, got {self.workers}")
        if self.staging_max_bytes < 1024 * 1024:
            raise ConfigError(file, f"{prefix}.staging_max_bytes", "must be at least 1048576 (1 MiB)")
        for key in self.gateway_for:
            host, _, medium = key.partition(".")
            if host not in ("classified", "unclassified") or medium not in ("personal", "registered"):
                raise ConfigError(file, f"{prefix}.gateway_for.{key}",
                                  "keys are <host class>.<medium class>, e.g. \"unclassified.personal\"")

    def worker_count(self, scan_jobs: int) -> int:
        return self.workers or max(2, min(4, scan_jobs * 2))

    def gateway_on(self, host_class: str, medium_class: str) -> bool:
        return self.gateway_for.get(f"{host_class}.{medium_class}", self.gateway)


@dataclass
class PrinterEntry:
    """A registered printer (涉密打印机) with its level ceiling. Kept in agent.toml for now; the
    record has the shape of a signed central-registry entry, so it can come from there later."""
    id: str
    level: str                      # level ceiling: public … top_secret
    queue: str = ""                 # the CUPS queue name, or
    uri: str = ""                   # the printer's real device URI (matches whatever the queue is called)
    hosts: list[str] = field(default_factory=lambda: ["classified", "unclassified"])

    def validate(self, file: str | Path, prefix: str) -> None:
        from baomi.common.levels import Level
        try:
            Level.parse(self.level)
        except ValueError as exc:
            raise ConfigError(file, f"{prefix}.level", str(exc)) from None
        if not (self.queue or self.uri):
            raise ConfigError(file, prefix, "a registered printer needs queue or uri")
        if not self.hosts or any(h not in ("classified", "unclassified") for h in self.hosts):
            raise ConfigError(file, f"{prefix}.hosts", "expected a non-empty list of classified, unclassified")


@dataclass
class PrintSection:
    # every CUPS queue goes through baomi's backend (docs/printing.md)
    enabled: bool = True
    # the agent's root-only socket the backend asks for each job's verdict
    socket: Path = Path("/run/baomi/print.sock")
    # the CUPS server the agent manages ("" = CUPS's own default; a socket path or host[:port])
    cups_server: str = ""
    # where `baomi-agent print install` puts the backend (cupsd's ServerBin/backend)
    backend_dir: Path = Path("/usr/lib/cups/backend")
    # how often queues are checked for ones that bypass the backend
    recheck_s: float = 30.0
    # wrap a queue found bypassing the backend (after print.unprotected_queue); false: only report
    wrap_new_queues: bool = True
    # levels whose printouts carry the watermark; [] = none
    watermark_levels: list[str] = field(default_factory=lambda: list(WATERMARK_DEFAULT_LEVELS))
    # a job that needs the watermark but whose data cannot take it (neither PDF nor convertible)
    # is blocked when true; printed unstamped (and recorded so) when false
    watermark_required: bool = False
    # how long the backend waits for the agent's verdict before the job follows the uninspectable cell
    timeout_s: float = 120.0
    printer: list[PrinterEntry] = field(default_factory=list)

    def validate(self, file: str | Path, prefix: str) -> None:
        from baomi.common.levels import LEVEL_IDS
        bad = [lv for lv in self.watermark_levels if lv not in LEVEL_IDS]
        if bad:
            raise ConfigError(file, f"{prefix}.watermark_levels", f"unknown level {bad[0]!r}; expected {', '.join(LEVEL_IDS)}")
        if self.recheck_s <= 0 or self.timeout_s <= 0:
            raise ConfigError(file, f"{prefix}.recheck_s", "recheck_s and timeout_s must be > 0")
        ids = [p.id for p in self.printer]
        if len(set(ids)) != len(ids):
            raise ConfigError(file, f"{prefix}.printer", "duplicate printer id")


@dataclass
class DebugSection:
    # test hook: the agent kills itself (SIGKILL) right after this step of a block, to prove
    # recovery (intent, storing, stored, removed, recorded). Never set it in production.
    crash_at: str = ""

    def validate(self, file: str | Path, prefix: str) -> None:
        steps = ("", "intent", "storing", "stored", "removed", "recorded")
        if self.crash_at not in steps:
            raise ConfigError(file, f"{prefix}.crash_at", f"must be one of {', '.join(map(repr, steps))}")


@dataclass
class QuarantineSection:
    public_key: Path | None = None  # the security administrator's X25519 public key (PEM)
    max_bytes: int = 2 * 1024 * 1024 * 1024


@dataclass
class CollectorSection:
    url: str | None = None          # https://collector:8443 (http:// only to a loopback collector)
    ca: Path | None = None          # CA certificate (PEM) that signed the collector's; system CAs when unset
    token: str | None = None        # one-time enrollment token (`baomi-collector token create`)
    batch_size: int = 500           # events per batch
    batch_bytes: int = 2 * 1024 * 1024  # and at most this many bytes (the collector refuses over 8 MiB)
    heartbeat_s: float = 30.0  # a central change applies within one interval (docs/policy.md)
    backoff_min_s: float = 1.0      # first retry after a failure; doubles up to backoff_max_s, with jitter
    backoff_max_s: float = 300.0
    timeout_s: float = 30.0         # one HTTP request

    def validate(self, file: str | Path, prefix: str) -> None:
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            raise ConfigError(file, f"{prefix}.url", f"expected https://HOST:PORT, got {self.url!r}")
        if self.url and self.url.startswith("http://"):
            host = self.url[7:].split("/")[0].rsplit(":", 1)[0].strip("[]")
            if not (host in ("localhost", "::1") or host.startswith("127.")):
                raise ConfigError(file, f"{prefix}.url", "plain http:// only to a collector on this machine; use https://")
        for key in ("batch_size", "batch_bytes"):
            if getattr(self, key) < 1:
                raise ConfigError(file, f"{prefix}.{key}", "must be at least 1")
        for key in ("heartbeat_s", "backoff_min_s", "backoff_max_s", "timeout_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(file, f"{prefix}.{key}", "must be positive")
        if self.backoff_max_s < self.backoff_min_s:
            raise ConfigError(file, f"{prefix}.backoff_max_s", "must not be below backoff_min_s")


@dataclass
class SpoolSection:
    max_bytes: int = 512 * 1024 * 1024
    # acknowledged events stay this long for `baomi-agent events`, unless the cap needs the room
    acked_retention_s: float = 7 * 24 * 3600.0
    # security events held in memory while the disk is full
    overflow_events: int = 10_000

    def validate(self, file: str | Path, prefix: str) -> None:
        if self.max_bytes < 64 * 1024:
            raise ConfigError(file, f"{prefix}.max_bytes", f"must be at least 65536, got {self.max_bytes}")
        if self.acked_retention_s < 0:
            raise ConfigError(file, f"{prefix}.acked_retention_s", "must be >= 0")
        if self.overflow_events < 1:
            raise ConfigError(file, f"{prefix}.overflow_events", "must be at least 1")


@dataclass
class ScreenlockSection:
    enabled: bool = True
    idle_limit_s: int = 300
    poll_s: float = 5.0
    verify_s: float = 5.0
    on_failure: Literal["retry", "terminate"] = "retry"
    # absence rule (002: away half an hour or more, the PC is shut down): idle longer than this
    # (minutes) → audit (record only), suspend, logout or poweroff through logind; 0 = off
    absence_min: int = 30
    absence_action: Literal["audit", "suspend", "logout", "poweroff"] = "audit"
    manage_desktop_settings: bool = True
    helper_socket: Path = Path("/run/baomi/session.sock")
    # where the desktop settings files are installed (dconf/, xdg/ under it)
    settings_root: Path = Path("/etc")
    # a graphical session without a connected helper after this long is reported
    helper_grace_s: float = 60.0
    # how often to try again when logind cannot be reached
    logind_retry_s: float = 30.0
    # the helper socket, per connecting uid: open connections at most, new connections per second
    # (sustained) with a burst, and at most one helper.rejected event per interval (with a count)
    helper_max_connections_per_uid: int = 8
    helper_connect_rate_per_s: float = 2.0
    helper_connect_burst: int = 10
    helper_rejected_interval_s: float = 60.0

    def validate(self, file: str | Path, prefix: str) -> None:
        if not 1 <= self.idle_limit_s <= 300:
            raise ConfigError(file, f"{prefix}.idle_limit_s",
                              f"must be between 1 and 300 seconds (rule: lock within 5 minutes), got {self.idle_limit_s}")
        if self.poll_s <= 0:
            raise ConfigError(file, f"{prefix}.poll_s", "must be > 0")
        for key in ("helper_max_connections_per_uid", "helper_connect_burst"):
            if getattr(self, key) < 1:
                raise ConfigError(file, f"{prefix}.{key}", f"must be at least 1, got {getattr(self, key)}")
        for key in ("verify_s", "helper_grace_s", "logind_retry_s", "helper_connect_rate_per_s",
                    "helper_rejected_interval_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(file, f"{prefix}.{key}", f"must be > 0, got {getattr(self, key)}")
        if self.absence_min < 0:
            raise ConfigError(file, f"{prefix}.absence_min", f"must be 0 (off) or a number of minutes, got {self.absence_min}")
        if self.absence_min and self.absence_min * 60 <= self.idle_limit_s + 60:
            raise ConfigError(file, f"{prefix}.absence_min",
                              f"must leave more than a minute after the lock (idle_limit_s={self.idle_limit_s}), got {self.absence_min}")


@dataclass
class PostureSection:
    # host posture (docs/posture.md); watched only on classified hosts
    enabled: bool = True
    # outside targets only the outside world answers: "HOST:PORT" (TCP connect) or "NAME" (DNS lookup)
    probes: list[str] = field(default_factory=list)
    probe_interval_s: float = 60.0
    probe_timeout_s: float = 3.0
    # the site's networks (CIDR); a route or address beyond them could reach outside
    allowed_networks: list[str] = field(default_factory=list)
    on_external: Literal["audit", "isolate"] = "audit"
    # listeners, shares and passwords are checked this often
    check_interval_s: float = 300.0
    allowed_listeners: list[str] = field(default_factory=list)
    nfs_exports: Path = Path("/etc/exports")
    smb_conf: Path = Path("/etc/samba/smb.conf")
    passwd_file: Path = Path("/etc/passwd")
    shadow_file: Path = Path("/etc/shadow")
    max_password_age_days: int = 60
    # keep every radio (Wi-Fi, Bluetooth, WWAN …) rfkill-blocked, checked every radio_poll_s
    block_radios: bool = True
    rfkill_root: Path = Path("/sys/class/rfkill")
    radio_poll_s: float = 2.0
    # a USB Wi-Fi or Bluetooth adapter or wireless receiver plugged in: de-authorize its interfaces
    deauthorize_wireless: bool = True

    def validate(self, file: str | Path, prefix: str) -> None:
        from .decide.posture import listener_entry_problem, parse_networks
        from .posture.probe import parse_probe
        try:
            parse_networks(self.allowed_networks)
        except ValueError as exc:
            raise ConfigError(file, f"{prefix}.allowed_networks", str(exc)) from None
        if self.on_external == "isolate" and not self.allowed_networks:
            # without the site's networks every interface looks foreign, the site's own included
            raise ConfigError(file, f"{prefix}.on_external",
                              "\"isolate\" needs allowed_networks (the site's networks), or it could cut the site off")
        for i, probe in enumerate(self.probes):
            try:
                parse_probe(probe)
            except ValueError as exc:
                raise ConfigError(file, f"{prefix}.probes[{i}]", str(exc)) from None
        for i, entry in enumerate(self.allowed_listeners):
            problem = listener_entry_problem(entry)
            if problem:
                raise ConfigError(file, f"{prefix}.allowed_listeners[{i}]", problem)
        for key in ("probe_interval_s", "probe_timeout_s", "check_interval_s", "radio_poll_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(file, f"{prefix}.{key}", f"must be > 0, got {getattr(self, key)}")
        if not 1 <= self.max_password_age_days <= 3650:
            raise ConfigError(file, f"{prefix}.max_password_age_days",
                              f"must be 1 to 3650 days (rule: change every two months), got {self.max_password_age_days}")


@dataclass
class DiscoverySection:
    # discovery of marked files at rest on unclassified hosts (docs/posture.md); never on classified ones
    enabled: bool = True
    paths: list[Path] = field(default_factory=lambda: [Path("/home"), Path("/root"), Path("/srv")])
    # fnmatch patterns on the full path; a matching folder is not entered
    exclude: list[str] = field(default_factory=lambda: ["*/.cache", "*/.local/share/Trash", "*/node_modules",
                                                        "*/.git"])
    interval_s: float = 86400.0
    start_delay_s: float = 600.0
    # share of one core the scan may use on average (it sleeps to stay under it)
    cpu_share: float = 0.25
    # pause while a discharging battery is below this percentage (0: never)
    min_battery_pct: float = 20.0
    # pause while a desktop session's user was idle less than this many seconds at the screen-lock
    # helper's last report, i.e. is typing or moving the mouse (0: never)
    busy_idle_s: float = 2.0

    def validate(self, file: str | Path, prefix: str) -> None:
        if not 0 < self.cpu_share <= 1:
            raise ConfigError(file, f"{prefix}.cpu_share", f"must be above 0 and at most 1, got {self.cpu_share}")
        for key in ("interval_s",):
            if getattr(self, key) <= 0:
                raise ConfigError(file, f"{prefix}.{key}", f"must be > 0, got {getattr(self, key)}")
        for key in ("start_delay_s", "min_battery_pct", "busy_idle_s"):
            if getattr(self, key) < 0:
                raise ConfigError(file, f"{prefix}.{key}", f"must be >= 0, got {getattr(self, key)}")


@dataclass
class CheckSection:
    # where `baomi-agent check` reads the kernel's USB history (docs/posture.md)
    kernel_logs: list[str] = field(default_factory=lambda: ["/var/log/kern.log*"])  # globs; .gz is read too
    journalctl: bool = True                  # also `journalctl _TRANSPORT=kernel -o export` (every boot kept)
    journal_export: list[Path] = field(default_factory=list)  # saved `journalctl -o export` streams
    # the daemon's own check (agent/selfcheck.py): once every every_h hours (0: never), the first
    # start_delay_s after the agent starts; one the collector asks for at most every min_interval_s
    every_h: float = 24.0
    start_delay_s: float = 600.0
    min_interval_s: float = 300.0
    probe: bool = True                       # the scheduled and requested checks probe like `check`

    def validate(self, file: str | Path, prefix: str) -> None:
        for key in ("every_h", "start_delay_s", "min_interval_s"):
            if getattr(self, key) < 0:
                raise ConfigError(file, f"{prefix}.{key}", f"must be >= 0, got {getattr(self, key)}")


@dataclass
class AgentConfig:
    host: HostSection = field(default_factory=HostSection)
    paths: PathsSection = field(default_factory=PathsSection)
    media: MediaSection = field(default_factory=MediaSection)
    scan: ScanSection = field(default_factory=ScanSection)
    policy: PolicySection = field(default_factory=PolicySection)
    central: CentralSection = field(default_factory=CentralSection)
    approvals: ApprovalsSection = field(default_factory=ApprovalsSection)
    quarantine: QuarantineSection = field(default_factory=QuarantineSection)
    collector: CollectorSection = field(default_factory=CollectorSection)
    spool: SpoolSection = field(default_factory=SpoolSection)
    screenlock: ScreenlockSection = field(default_factory=ScreenlockSection)
    enforce: EnforceSection = field(default_factory=EnforceSection)
    posture: PostureSection = field(default_factory=PostureSection)
    discovery: DiscoverySection = field(default_factory=DiscoverySection)
    check: CheckSection = field(default_factory=CheckSection)
    print: PrintSection = field(default_factory=PrintSection)
    debug: DebugSection = field(default_factory=DebugSection)
    source: Path | None = field(default=None, metadata={"internal": True})
    # dotted key -> the file (agent.toml or a drop-in) its value came from, for `config show`
    sources: dict[str, Path] = field(default_factory=dict, metadata={"internal": True})

    @property
    def state_dir(self) -> Path:
        return self.paths.state_dir


def load(path: str | Path | None = None) -> AgentConfig:
    """Load agent.toml and its drop-ins (agent.d/*.toml, merged in name order); with no path,
    $BAOMI_AGENT_CONFIG or /etc/baomi/agent.toml (built-in defaults when neither exists)."""
    must_exist = path is not None
    if path is None:
        env = os.environ.get("BAOMI_AGENT_CONFIG")
        must_exist = bool(env)
        path = Path(env) if env else DEFAULT_CONFIG
    path = Path(path)
    data, sources = read_layers(path, must_exist)
    try:
        cfg = build(AgentConfig, data, path)
    except ConfigError as exc:
        raise _blame(exc, sources) from None
    cfg.source = path if path.exists() else None
    cfg.sources = sources
    # relative paths are relative to agent.toml's folder, in the drop-ins too
    resolve_paths(cfg, path.resolve().parent)
    return cfg


def _blame(exc: ConfigError, sources: dict[str, Path]) -> ConfigError:
    """Name the drop-in that set a bad value, not the main file."""
    key = (exc.key or "").split("[", 1)[0]
    while key and key not in sources:
        key = key.rpartition(".")[0]
    if not key or str(sources[key]) == exc.file:
        return exc
    return ConfigError(sources[key], exc.key, exc.message)
