"""host.sharing against real listening sockets in the lab's namespace, and share files."""
from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import events, wait_event, write_config

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def test_listeners_outside_the_allow_list_are_reported_once(netlab, start_agent, listen, tmp_path: Path) -> None:
    config = write_config(tmp_path, allowed_listeners=["2222", "10.77.0.2:9443"])
    start_agent(config)
    listen("0.0.0.0", 8000)                   # python -m http.server, the classic
    listen("127.0.0.1", 9000)                 # loopback: nobody else reaches it
    listen("0.0.0.0", 2222)                   # allowed on every address
    listen("10.77.0.2", 9443)                 # allowed on this address
    listen("::", 8001)
    (ev,) = wait_event(config, "host.sharing", port=8000)
    d = ev["details"]
    assert (d["type"], d["protocol"], d["address"]) == ("listener", "tcp", "0.0.0.0")
    assert d["process"].startswith("python") and ev["severity"] == "high" and ev["rule"] == "posture.sharing"
    wait_event(config, "host.sharing", port=8001, address="::")
    # a later round (it sees a new one): still one event each, none for the allowed or loopback ones
    listen("10.77.0.2", 8002)
    wait_event(config, "host.sharing", port=8002)
    assert sorted(e["details"]["port"] for e in events(config, "host.sharing")) == [8000, 8001, 8002]


def test_nfs_exports_and_samba_shares_are_reported(netlab, start_agent, listen, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "etc/exports").write_text("# none yet\n")
    (tmp_path / "etc/smb.conf").write_text("[global]\n   workgroup = OFFICE\n")
    start_agent(config)
    listen("0.0.0.0", 8000)  # its event shows a check round has run
    wait_event(config, "host.sharing", port=8000)
    assert [e["details"]["type"] for e in events(config, "host.sharing")] == ["listener"]
    (tmp_path / "etc/exports").write_text('/srv/docs 10.77.0.0/16(rw,sync) # the archive\n"/srv/my files" *(ro)\n')
    (tmp_path / "etc/smb.conf").write_text("[global]\n workgroup = OFFICE\n[公文]\n path = /srv/gongwen\n"
                                           "[old]\n path = /srv/old\n available = no\n")
    nfs = wait_event(config, "host.sharing", type="nfs", count=2)
    assert {(e["details"]["path"], e["details"]["clients"]) for e in nfs} == \
        {("/srv/docs", "10.77.0.0/16(rw,sync)"), ("/srv/my files", "*(ro)")}
    (smb,) = wait_event(config, "host.sharing", type="smb")
    assert (smb["details"]["share"], smb["details"]["path"]) == ("公文", "/srv/gongwen")
