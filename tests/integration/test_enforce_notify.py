"""The user who wrote a blocked file gets a desktop notification on their own
session bus, in their language — delivered by a child running as that user
(root cannot talk to a user's session bus). The notification server is
python-dbusmock's notification_daemon on a real dbus-daemon run as the user."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support import enforce_files as docs
from tests.support.enforce_harness import Rig, wait_for
from tests.support.skips import need_tools

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
NOBODY = 65534


BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <!-- the user, and root for the mock server the test runs -->
    <allow user="nobody"/>
    <allow user="root"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _has_owner(address: str) -> bool:
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection
    try:
        with open_dbus_connection(bus=address) as c:
            r = c.send_and_get_reply(new_method_call(
                DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                            interface="org.freedesktop.DBus"), "NameHasOwner", "s",
                ("org.freedesktop.Notifications",)), timeout=2)
        return bool(r.body[0])
    except (OSError, TimeoutError):
        return False


@pytest.fixture
def user_session_bus(tmp_path: Path):
    """The session bus of uid 65534 at /run/user/65534/bus (dbus-daemon running as that
    user) with python-dbusmock's notification_daemon on it; yields the mock's call log."""
    need_tools("dbus-daemon")
    run = Path(f"/run/user/{NOBODY}")
    created = not run.exists()
    run.mkdir(parents=True, exist_ok=True)
    os.chown(run, NOBODY, NOBODY)
    run.chmod(0o700)
    address = f"unix:path={run}/bus"
    conf = run / "bus.conf"
    conf.write_text(BUS_CONFIG.format(address=address))
    conf.chmod(0o644)
    log = tmp_path / "notify.log"
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address"],
                           user=NOBODY, group=NOBODY, extra_groups=[], stdout=subprocess.PIPE,
                           env={"PATH": "/usr/bin:/bin", "LANG": "zh_CN.UTF-8"}, cwd="/")  # a Chinese desktop session
    mock = None
    try:
        assert bus.stdout.readline(), "dbus-daemon did not start"
        mock = subprocess.Popen([sys.executable, "-m", "dbusmock", "--session", "-t", "notification_daemon",
                                 "-l", str(log)], env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _has_owner(address), 20, "the mock notification server")
        yield log
    finally:
        for p in (mock, bus):
            if p is not None:
                p.terminate()
                p.wait(timeout=10)
        if created:
            shutil.rmtree(run, ignore_errors=True)
        else:
            for name in ("bus", "bus.conf"):
                (run / name).unlink(missing_ok=True)


def test_blocked_file_notifies_its_writer_in_chinese(user_session_bus: Path) -> None:
    with Rig("ext4", inventory=False) as rig:
        os.chmod(rig.tmp, 0o755)
        os.chmod(rig.mp, 0o777)
        # the user copies a marked file, in a Chinese locale
        src = Path(tempfile.mkdtemp()) / "机密计划.docx"
        src.write_bytes(docs.docx(docs.MARK))
        src.parent.chmod(0o755)
        subprocess.run(["cp", str(src), str(rig.mp / "机密计划.docx")], check=True,
                       user=NOBODY, group=NOBODY, extra_groups=[], env={"LANG": "zh_CN.UTF-8", "PATH": "/usr/bin:/bin"})
        wait_for(lambda: not (rig.mp / "机密计划.docx").exists(), 30, "the file to be blocked")
        rig.settle()
        (ev,) = rig.events("file.blocked")
        assert ev["user"]["uid"] == NOBODY and ev["user"]["name"] == "nobody"
        text = wait_for(lambda: user_session_bus.exists() and "Notify" in user_session_bus.read_text("utf-8")
                        and user_session_bus.read_text("utf-8"), 20, "the notification")
        assert "文件已被拦截" in text and "机密计划.docx" in text


def test_helper_channel_is_tried_first() -> None:
    got = []
    with Rig("ext4", inventory=False) as rig:
        rig.ctx.notifiers.append(lambda uid, s, b, u: got.append((uid, s, b, u)) or True)
        (rig.mp / "internal.txt").write_bytes(docs.gbk_text(True))
        wait_for(lambda: got, 30, "the helper channel to be called")
    uid, summary, body, urgency = got[0]
    assert uid == 0 and urgency == "critical" and "internal.txt" in summary
