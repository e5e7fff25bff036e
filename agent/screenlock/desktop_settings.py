"""Desktop settings that make each desktop lock by itself, installed and kept as files.

Under a root (default /etc):
    dconf/profile/user                       user-db:user + system-db:local
    dconf/db/local.d/00-baomi-screenlock     GNOME, UKUI and DDE keys
    dconf/db/local.d/locks/00-baomi-screenlock   the same keys, locked
    xdg/kscreenlockerrc                      KDE, [Daemon][$i] (immutable)
then `dconf update <root>/dconf/db` compiles the system database.

The agent is the real guarantee (it locks an idle session itself); these
settings make the desktop lock on its own too, so the lock also holds while the
agent is stopped. Values are in the units each desktop uses: GNOME seconds,
UKUI and KDE minutes, DDE seconds.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("baomi.agent.screenlock")

KEYFILE = "00-baomi-screenlock"
HEADER = "# Installed and kept by baomi-agent ([screenlock] in agent.toml); local edits are replaced.\n"


def _minutes(idle_limit_s: int) -> int:
    # whole minutes, rounded down so the desktop never waits longer than the limit
    return max(1, idle_limit_s // 60)


def gnome_policy(idle_limit_s: int) -> dict[str, dict[str, str]]:
    """dconf keyfile content: {dir: {key: GVariant text}}."""
    minutes = _minutes(idle_limit_s)
    return {
        "org/gnome/desktop/session": {"idle-delay": f"uint32 {idle_limit_s}"},
        "org/gnome/desktop/screensaver": {"lock-enabled": "true", "lock-delay": "uint32 0",
                                          "idle-activation-enabled": "true"},
        "org/ukui/screensaver": {"idle-activation-enabled": "true", "lock-enabled": "true",
                                 "idle-delay": str(minutes)},
        "org/ukui/session": {"idle-delay": str(minutes)},
        "com/deepin/dde/power": {"line-power-lock-delay": str(idle_limit_s),
                                 "battery-lock-delay": str(idle_limit_s),
                                 "screen-black-lock": "true", "sleep-lock": "true"},
    }


def keyfile_text(idle_limit_s: int) -> str:
    out = [HEADER]
    for group, keys in gnome_policy(idle_limit_s).items():
        out.append(f"[{group}]\n")
        out.extend(f"{k}={v}\n" for k, v in keys.items())
        out.append("\n")
    return "".join(out)


def locks_text(idle_limit_s: int) -> str:
    lines = [HEADER]
    for group, keys in gnome_policy(idle_limit_s).items():
        lines.extend(f"/{group}/{k}\n" for k in keys)
    return "".join(lines)


def kde_text(idle_limit_s: int) -> str:
    return (HEADER + "[Daemon][$i]\nAutolock=true\nLockOnResume=true\n"
            f"Timeout={_minutes(idle_limit_s)}\nLockGrace=0\n")


PROFILE_LINES = ("user-db:user", "system-db:local")


@dataclass
class SettingsChange:
    file: str
    reason: str   # "missing" | "changed"


class DesktopSettings:
    def __init__(self, root: Path, idle_limit_s: int) -> None:
        self.root = Path(root)
        self.idle_limit_s = idle_limit_s

    @property
    def db_dir(self) -> Path:
        return self.root / "dconf" / "db"

    def wanted(self) -> dict[Path, str]:
        return {
            self.db_dir / "local.d" / KEYFILE: keyfile_text(self.idle_limit_s),
            self.db_dir / "local.d" / "locks" / KEYFILE: locks_text(self.idle_limit_s),
            self.root / "xdg" / "kscreenlockerrc": kde_text(self.idle_limit_s),
        }

    def check(self) -> list[SettingsChange]:
        """Files that are missing or differ from the policy (nothing is changed)."""
        changes = []
        for path, text in self.wanted().items():
            if not path.exists():
                changes.append(SettingsChange(str(path), "missing"))
            elif path.read_text(errors="replace") != text:
                changes.append(SettingsChange(str(path), "changed"))
        profile = self.root / "dconf" / "profile" / "user"
        if not profile.exists():
            changes.append(SettingsChange(str(profile), "missing"))
        elif "system-db:local" not in profile.read_text(errors="replace").split():
            changes.append(SettingsChange(str(profile), "changed"))
        return changes

    def apply(self) -> list[SettingsChange]:
        """Write whatever differs, compile the dconf database; returns what was repaired."""
        changes = self.check()
        if not changes:
            return []
        for path, text in self.wanted().items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text(errors="replace") != text:
                tmp = path.with_name(path.name + ".baomi-tmp")
                tmp.write_text(text)
                tmp.chmod(0o644)
                tmp.replace(path)
        self._fix_profile()
        self.compile()
        return changes

    def _fix_profile(self) -> None:
        profile = self.root / "dconf" / "profile" / "user"
        profile.parent.mkdir(parents=True, exist_ok=True)
        lines = profile.read_text().split() if profile.exists() else []
        if "system-db:local" in lines:
            return
        if not lines:
            lines = list(PROFILE_LINES)
        else:  # keep the site's own databases; ours goes right after the user db
            at = 1 if lines and lines[0].startswith("user-db:") else 0
            lines.insert(at, "system-db:local")
        profile.write_text("\n".join(lines) + "\n")
        profile.chmod(0o644)

    def compile(self) -> None:
        dconf = shutil.which("dconf")
        if dconf is None:
            raise FileNotFoundError("dconf not found: the GNOME/UKUI/DDE settings were written but not compiled "
                                    "(install dconf-cli)")
        res = subprocess.run([dconf, "update", str(self.db_dir)], capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise RuntimeError(f"dconf update {self.db_dir} failed: {res.stderr.strip() or res.returncode}")


# Effective values a helper reports (gsettings schema, key) and what the policy requires of them.
CHECKED_KEYS: tuple[tuple[str, str], ...] = (
    ("org.gnome.desktop.session", "idle-delay"),
    ("org.gnome.desktop.screensaver", "lock-enabled"),
    ("org.gnome.desktop.screensaver", "idle-activation-enabled"),
    ("org.gnome.desktop.screensaver", "lock-delay"),
    ("org.ukui.screensaver", "idle-delay"),
    ("org.ukui.screensaver", "lock-enabled"),
)


def settings_drift(reported: dict[str, Any], idle_limit_s: int) -> dict[str, dict[str, Any]]:
    """Keys whose effective value in a session breaks the policy: {key: {"value", "want"}}.

    Keys the helper could not read (None/absent: not that desktop) are not drift.
    """
    drift: dict[str, dict[str, Any]] = {}

    def bad(key: str, want: str) -> None:
        drift[key] = {"value": reported.get(key), "want": want}

    idle = reported.get("org.gnome.desktop.session.idle-delay")
    if isinstance(idle, (int, float)) and not isinstance(idle, bool) and not 0 < idle <= idle_limit_s:
        bad("org.gnome.desktop.session.idle-delay", f"1..{idle_limit_s}")
    for key in ("org.gnome.desktop.screensaver.lock-enabled", "org.gnome.desktop.screensaver.idle-activation-enabled"):
        if reported.get(key) is False:
            bad(key, "true")
    minutes = reported.get("org.ukui.screensaver.idle-delay")  # UKUI counts minutes; -1 means never
    if isinstance(minutes, int) and not isinstance(minutes, bool) and not 0 < minutes <= _minutes(idle_limit_s):
        bad("org.ukui.screensaver.idle-delay", f"1..{_minutes(idle_limit_s)} (minutes)")
    if reported.get("org.ukui.screensaver.lock-enabled") is False:
        bad("org.ukui.screensaver.lock-enabled", "true")
    delay = reported.get("org.gnome.desktop.screensaver.lock-delay")
    if isinstance(delay, (int, float)) and not isinstance(delay, bool) and delay > 0:
        bad("org.gnome.desktop.screensaver.lock-delay", "0")
    return drift
