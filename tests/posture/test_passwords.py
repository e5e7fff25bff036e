"""host.password through the running component, from an alternate shadow file."""
from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import events, wait_event, write_config

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


def test_old_and_empty_passwords_are_reported_by_the_component(netlab, start_agent, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nzhang:x:1000:1000::/home/zhang:/bin/bash\n"
                                         "li:x:1001:1001::/home/li:/bin/bash\nsvc:x:999:999::/:/usr/sbin/nologin\n")
    (tmp_path / "etc/shadow").write_text("root:!:1:0:99999:7:::\nzhang:$6$s$h:1:0:99999:7:::\nli::1:0:99999:7:::\n"
                                         "svc::1:0:99999:7:::\n")
    config = write_config(tmp_path, max_password_age_days=30)
    agent = start_agent(config)
    (old,) = wait_event(config, "host.password", finding="password_too_old")
    assert old["user"]["name"] == "zhang" and old["user"]["uid"] == 1000 and old["severity"] == "high"
    assert old["details"]["age_days"] > 20000 and old["details"]["max_age_days"] == 30
    (empty,) = wait_event(config, "host.password", finding="empty_password")
    assert empty["details"]["account"] == "li" and empty["severity"] == "critical"
    # restarted within the day: what was reported stays quiet, a new finding still shows
    agent.stop()
    with open(tmp_path / "etc/passwd", "a") as f:
        f.write("wang:x:1002:1002::/home/wang:/bin/sh\n")
    with open(tmp_path / "etc/shadow", "a") as f:
        f.write("wang:$6$s$h:2:0:99999:7:::\n")
    start_agent(config)
    wait_event(config, "host.password", account="wang")
    assert sorted(e["details"]["account"] for e in events(config, "host.password")) == ["li", "wang", "zhang"]
