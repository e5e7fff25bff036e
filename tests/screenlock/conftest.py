"""Fixtures for the screen-lock tests: a private system bus with python-dbusmock's logind."""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.skips import need_tools

dbus = pytest.importorskip("dbus", reason="python-dbusmock needs dbus-python (test extra)")
dbusmock = pytest.importorskip("dbusmock", reason="python-dbusmock not installed (test extra)")

LOGIND = "org.freedesktop.login1"
MANAGER = "org.freedesktop.login1.Manager"
SESSION = "org.freedesktop.login1.Session"

# LockSession that takes effect (as a desktop that honours logind's Lock signal would)
LOCK_WORKS = ("objects['/org/freedesktop/login1/session/' + args[0]].UpdateProperties("
              "'org.freedesktop.login1.Session', {'LockedHint': dbus.Boolean(True)})")


class MockLogind:
    """The dbusmock logind on a private system bus, with helpers to shape sessions."""

    def __init__(self, address: str, proc: subprocess.Popen, obj) -> None:
        self.address = address
        self.proc = proc
        self.obj = obj
        self.bus = dbus.bus.BusConnection(address)

    def manager(self, method: str, *args):
        return getattr(self.obj, method)(*args, dbus_interface=MANAGER)

    def set_lock_behaviour(self, works: bool) -> None:
        self.obj.AddMethod(MANAGER, "LockSession", "s", "", LOCK_WORKS if works else "",
                           dbus_interface=dbusmock.MOCK_IFACE)

    def add_session(self, sid: str, uid: int, name: str, seat: str = "seat0", type_: str = "x11",
                    idle_s: float | None = None) -> str:
        path = self.obj.AddSession(sid, seat or "seat0", dbus.UInt32(uid), name, True,
                                   dbus_interface=dbusmock.MOCK_IFACE)
        self.update(sid, {"Type": type_})
        if not seat:  # a session without a seat (remote, tty over ssh); the template always makes one
            self.update(sid, {"Seat": dbus.Struct(("", dbus.ObjectPath("/")), signature="so")})
        if idle_s is not None:
            self.set_idle(sid, idle_s)
        self.obj.EmitSignal(MANAGER, "SessionNew", "so", [sid, dbus.ObjectPath(path)],
                            dbus_interface=dbusmock.MOCK_IFACE)
        return str(path)

    def session_obj(self, sid: str):
        return self.bus.get_object(LOGIND, f"/org/freedesktop/login1/session/{sid}")

    def update(self, sid: str, props: dict) -> None:
        self.session_obj(sid).UpdateProperties(SESSION, props, dbus_interface=dbusmock.MOCK_IFACE)

    def set_idle(self, sid: str, idle_s: float) -> None:
        """Idle since idle_s seconds ago, on the monotonic clock the agent reads too."""
        since_mono = int((time.monotonic() - idle_s) * 1e6)
        since_wall = int((time.time() - idle_s) * 1e6)
        self.update(sid, {"IdleHint": True, "IdleSinceHint": dbus.UInt64(since_wall),
                          "IdleSinceHintMonotonic": dbus.UInt64(since_mono), "LockedHint": False})

    def get(self, sid: str, prop: str):
        v = self.session_obj(sid).Get(SESSION, prop, dbus_interface=dbus.PROPERTIES_IFACE)
        return bool(v) if isinstance(v, dbus.Boolean) else v

    def remove_session(self, sid: str) -> None:
        path = f"/org/freedesktop/login1/session/{sid}"
        self.obj.RemoveObject(path, dbus_interface=dbusmock.MOCK_IFACE)
        self.obj.EmitSignal(MANAGER, "SessionRemoved", "so", [sid, dbus.ObjectPath(path)],
                            dbus_interface=dbusmock.MOCK_IFACE)


@pytest.fixture(scope="module")
def system_bus() -> Iterator[str]:
    """A private dbus-daemon playing the system bus; DBUS_SYSTEM_BUS_ADDRESS points at it."""
    need_tools("dbus-daemon")
    old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    pid, address = start_private_bus()
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
    yield address
    if old is None:
        os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
    else:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old
    os.kill(pid, 15)


_MOCK_PY: tuple[str, dict] | None = None


def mock_python() -> tuple[str, dict]:
    """(python, extra env) that can run dbusmock servers: they need GLib's gi bindings.

    The project's venv has dbusmock but usually not gi (PyGObject does not build
    against Debian's GLib from PyPI); Debian's python3 has python3-gi and
    python3-dbus, so it runs the venv's dbusmock package through PYTHONPATH.
    """
    global _MOCK_PY
    if _MOCK_PY is not None:
        return _MOCK_PY
    probe = "import gi, dbus; gi.require_version('GLib', '2.0'); from gi.repository import GLib"
    if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0:
        _MOCK_PY = (sys.executable, {})
        return _MOCK_PY
    system_py = "/usr/bin/python3"
    if not os.path.exists(system_py) or subprocess.run([system_py, "-c", probe], capture_output=True).returncode:
        pytest.skip("dbusmock servers need GLib's gi: install python3-gi python3-dbus (scripts/setup)")
    shim = Path(tempfile.mkdtemp(prefix="baomi-dbusmock-"))
    atexit.register(shutil.rmtree, shim, True)
    (shim / "dbusmock").symlink_to(Path(dbusmock.__file__).parent)
    _MOCK_PY = (system_py, {"PYTHONPATH": str(shim)})
    return _MOCK_PY


def spawn_mock(args: list[str], env: dict) -> subprocess.Popen:
    py, extra = mock_python()
    return subprocess.Popen([py, "-m", "dbusmock", *args], env={**os.environ, **env, **extra},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start_private_bus() -> tuple[int, str]:
    out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
                         capture_output=True, text=True, timeout=10, check=True).stdout.split()
    return int(out[1]), out[0]


@pytest.fixture
def logind(system_bus: str) -> Iterator[MockLogind]:
    """A fresh mock logind (no sessions, LockSession that works) for one test."""
    bus = dbus.bus.BusConnection(system_bus)
    proc = spawn_mock(["--template", "logind"], {"DBUS_SYSTEM_BUS_ADDRESS": system_bus})
    # --template logind goes to the system bus; wait until the name appears
    deadline = time.monotonic() + 15
    while not bus.name_has_owner(LOGIND):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"dbusmock logind did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    obj = bus.get_object(LOGIND, "/org/freedesktop/login1")
    mock = MockLogind(system_bus, proc, obj)
    mock.set_lock_behaviour(True)
    yield mock
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while bus.name_has_owner(LOGIND) and time.monotonic() < deadline:
        time.sleep(0.05)
    bus.close()


def wait_for(pred, timeout: float = 10.0, interval: float = 0.05):
    """Poll until pred() is truthy; returns its value or None after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(interval)


def write_config(tmp: Path, **screenlock) -> Path:
    """agent.toml for a test: state in tmp, helper socket in tmp, settings root in tmp."""
    sl = {"idle_limit_s": 2, "poll_s": 0.5, "verify_s": 1.5, "helper_grace_s": 30,
          "manage_desktop_settings": False, "helper_socket": str(tmp / "session.sock"),
          "settings_root": str(tmp / "etc"), "logind_retry_s": 1.0, **screenlock}
    # posture off: the daemon runs in the machine's own network namespace and would block its radios
    lines = ["[host]", 'class = "classified"', 'name = "test-pc"', "[paths]", f'state_dir = "{tmp / "state"}"',
             "[posture]", "enabled = false", "[screenlock]"]
    for k, v in sl.items():
        lines.append(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else
                     f"{k} = {str(v).lower() if isinstance(v, bool) else v}")
    path = tmp / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
