"""The posture component acts on classified hosts only, and only when enabled."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent import config
from baomi.agent.context import open_context
from baomi.agent.posture.component import PostureComponent


@pytest.mark.parametrize("host_class,enabled", [("unclassified", True), ("classified", False)])
def test_nothing_is_watched_or_changed(tmp_path: Path, host_class: str, enabled: bool) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f'[host]\nclass = "{host_class}"\n[paths]\nstate_dir = "state"\n'
                    f'[posture]\nenabled = {str(enabled).lower()}\nrfkill_root = "rfkill"\n')
    ctx = open_context(config.load(path))
    try:
        comp = PostureComponent(ctx)
        comp.start()
        assert comp.external is None and comp.checks is None and comp._threads == []
        assert "posture" not in ctx.status
        comp.stop()
        assert list(ctx.spool.iter_events()) == []
    finally:
        ctx.spool.close()


def test_the_heartbeat_carries_the_posture_of_a_classified_host(tmp_path: Path) -> None:
    import time

    from baomi.agent.heartbeat import heartbeat_details
    from tests.support.rfkill import add_radio
    add_radio(tmp_path / "rfkill", 0, "wlan", "phy0")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "etc/exports").write_text("/srv/docs *(rw)\n")
    path = tmp_path / "agent.toml"
    path.write_text('[host]\nclass = "classified"\n[paths]\nstate_dir = "state"\n'
                    '[posture]\nrfkill_root = "rfkill"\nradio_poll_s = 0.1\ncheck_interval_s = 0.1\n'
                    f'passwd_file = "{tmp_path}/etc/passwd"\nshadow_file = "{tmp_path}/etc/no-shadow"\n'
                    f'nfs_exports = "{tmp_path}/etc/exports"\nsmb_conf = "{tmp_path}/etc/smb.conf"\n')
    ctx = open_context(config.load(path))
    comp = PostureComponent(ctx)
    try:
        comp.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not {"radios", "sharing"} <= set(ctx.status.get("posture", {})):
            time.sleep(0.1)
        p = heartbeat_details(ctx)["posture"]
    finally:
        comp.stop()
        ctx.spool.close()
    assert p["radios"] == {"blocked": 1, "failed": 0} and p["sharing"] >= 1  # the NFS export at least
    assert p["passwords_readable"] is False  # no shadow file
    # the network state comes from the host's own routes here: anything but "external" (no probes)
    assert p["network"] in ("isolated", "outside_route", "unknown") and p["reachable"] == []
