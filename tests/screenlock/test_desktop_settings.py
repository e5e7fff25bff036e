"""Desktop settings files, compiled and read back with the real dconf tool."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from baomi.agent.screenlock.desktop_settings import (DesktopSettings, keyfile_text, kde_text, locks_text,
                                                     settings_drift)
from tests.support.skips import need_tools

from .conftest import start_private_bus

pytestmark = pytest.mark.timeout(60)

LOCKED = ["/org/gnome/desktop/session/idle-delay", "/org/gnome/desktop/screensaver/lock-enabled",
          "/org/gnome/desktop/screensaver/lock-delay", "/org/gnome/desktop/screensaver/idle-activation-enabled"]


def dconf(profile: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["dconf", *args], capture_output=True, text=True, timeout=20,
                          env={**os.environ, "DCONF_PROFILE": str(profile), **(env or {})})


@pytest.fixture
def installed(tmp_path: Path) -> DesktopSettings:
    need_tools("dconf")
    s = DesktopSettings(tmp_path / "etc", 240)
    repaired = s.apply()
    assert {Path(c.file).name for c in repaired} >= {"00-baomi-screenlock", "kscreenlockerrc", "user"}
    return s


def test_files_are_written_and_the_database_compiled(installed: DesktopSettings) -> None:
    root = installed.root
    assert (root / "dconf/db/local").is_file()            # `dconf update` output
    assert (root / "dconf/profile/user").read_text().split() == ["user-db:user", "system-db:local"]
    kde = (root / "xdg/kscreenlockerrc").read_text()
    assert "[Daemon][$i]" in kde and "Timeout=4" in kde and "Autolock=true" in kde
    assert installed.check() == []
    assert installed.apply() == []                        # nothing to repair


def test_values_read_back_with_dconf(installed: DesktopSettings, tmp_path: Path) -> None:
    # compile once more with `dconf compile` into a separate file, as an admin would check it
    db = tmp_path / "compiled.db"
    res = subprocess.run(["dconf", "compile", str(db), str(installed.db_dir / "local.d")],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stderr
    profile = tmp_path / "profile"
    profile.write_text(f"file-db:{db}\n")
    assert dconf(profile, "read", "/org/gnome/desktop/session/idle-delay").stdout.strip() == "uint32 240"
    assert dconf(profile, "read", "/org/gnome/desktop/screensaver/lock-enabled").stdout.strip() == "true"
    assert dconf(profile, "read", "/org/gnome/desktop/screensaver/lock-delay").stdout.strip() == "uint32 0"
    assert dconf(profile, "read", "/org/ukui/session/idle-delay").stdout.strip() == "4"
    assert dconf(profile, "read", "/com/deepin/dde/power/line-power-lock-delay").stdout.strip() == "240"
    dump = dconf(profile, "dump", "/org/gnome/desktop/").stdout
    assert "[screensaver]" in dump and "idle-activation-enabled=true" in dump
    # the system database that `dconf update` made holds the same values
    profile.write_text(f"file-db:{installed.db_dir / 'local'}\n")
    assert dconf(profile, "read", "/org/gnome/desktop/session/idle-delay").stdout.strip() == "uint32 240"


def test_locked_keys_cannot_be_changed_by_the_user(installed: DesktopSettings, tmp_path: Path) -> None:
    need_tools("dbus-daemon")
    home = tmp_path / "home"
    home.mkdir()
    profile = tmp_path / "profile"
    profile.write_text(f"user-db:user\nfile-db:{installed.db_dir / 'local'}\n")
    listed = (installed.db_dir / "local.d/locks/00-baomi-screenlock").read_text().split()
    assert set(LOCKED) <= set(listed)
    old = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "DCONF_PROFILE")}
    os.environ.update(XDG_CONFIG_HOME=str(home / ".config"), XDG_RUNTIME_DIR=str(home), DCONF_PROFILE=str(profile))
    pid, address = start_private_bus()   # dconf-service is activated on it with this environment
    try:
        env = {"DBUS_SESSION_BUS_ADDRESS": address}
        for key in LOCKED:
            res = dconf(profile, "write", key, "uint32 900" if "delay" in key else "false", env=env)
            assert res.returncode != 0 and "non-writable" in res.stderr, (key, res.stderr)
        # an unlocked key is writable: the refusal above is the lock, not a broken setup
        res = dconf(profile, "write", "/org/gnome/desktop/interface/clock-format", "'24h'", env=env)
        assert res.returncode == 0, res.stderr
        assert dconf(profile, "read", "/org/gnome/desktop/interface/clock-format").stdout.strip() == "'24h'"
        assert dconf(profile, "read", "/org/gnome/desktop/session/idle-delay").stdout.strip() == "uint32 240"
    finally:
        os.kill(pid, 15)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_changed_files_are_detected_and_repaired(installed: DesktopSettings) -> None:
    keyfile = installed.db_dir / "local.d/00-baomi-screenlock"
    keyfile.write_text(keyfile.read_text().replace("uint32 240", "uint32 3600"))
    (installed.root / "xdg/kscreenlockerrc").unlink()
    problems = {(Path(c.file).name, c.reason) for c in installed.check()}
    assert problems == {("00-baomi-screenlock", "changed"), ("kscreenlockerrc", "missing")}
    installed.apply()
    assert installed.check() == []
    assert "uint32 240" in keyfile.read_text()


def test_site_profile_is_kept(tmp_path: Path) -> None:
    need_tools("dconf")
    profile = tmp_path / "etc/dconf/profile/user"
    profile.parent.mkdir(parents=True)
    profile.write_text("user-db:user\nsystem-db:site\n")
    DesktopSettings(tmp_path / "etc", 300).apply()
    assert profile.read_text().split() == ["user-db:user", "system-db:local", "system-db:site"]


def test_minutes_never_exceed_the_limit() -> None:
    assert "Timeout=4" in kde_text(299) and "idle-delay=4" in keyfile_text(299)
    assert "Timeout=1" in kde_text(30)
    assert "/org/gnome/desktop/session/idle-delay" in locks_text(300)


def test_session_drift_rules() -> None:
    good = {"org.gnome.desktop.session.idle-delay": 300, "org.gnome.desktop.screensaver.lock-enabled": True,
            "org.gnome.desktop.screensaver.idle-activation-enabled": True,
            "org.gnome.desktop.screensaver.lock-delay": 0}
    assert settings_drift(good, 300) == {}
    assert settings_drift({}, 300) == {}  # not a GNOME session: nothing to say
    bad = {**good, "org.gnome.desktop.session.idle-delay": 0, "org.gnome.desktop.screensaver.lock-enabled": False,
           "org.gnome.desktop.screensaver.lock-delay": 30}
    assert set(settings_drift(bad, 300)) == {"org.gnome.desktop.session.idle-delay",
                                             "org.gnome.desktop.screensaver.lock-enabled",
                                             "org.gnome.desktop.screensaver.lock-delay"}
    assert set(settings_drift({**good, "org.gnome.desktop.session.idle-delay": 600}, 300)) == {
        "org.gnome.desktop.session.idle-delay"}


def test_ukui_drift_rules() -> None:
    assert settings_drift({"org.ukui.screensaver.idle-delay": 5, "org.ukui.screensaver.lock-enabled": True}, 300) == {}
    assert set(settings_drift({"org.ukui.screensaver.idle-delay": -1}, 300)) == {"org.ukui.screensaver.idle-delay"}
    assert set(settings_drift({"org.ukui.screensaver.idle-delay": 5}, 240)) == {"org.ukui.screensaver.idle-delay"}
    assert set(settings_drift({"org.ukui.screensaver.lock-enabled": False}, 300)) == {
        "org.ukui.screensaver.lock-enabled"}
