"""End to end (docs/policy.md "Scopes"): a real collector and two real `baomi-agent run`s.
The system administrator puts one host in 财务部; the security administrator blocks a cell
for that group and sets a cell for classified hosts. The host in the group blocks a copy to
its loop exFAT stick, the other host (classified, in no group) does not take the group's
cell but takes its class's, and each one's policy.applied names the scopes it ran."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from tests.central.conftest import add_users, central_toml, create_key, csrf_of, login, save_public_key
from tests.central.test_agent_policy import _copy, _policy
from tests.central.test_scopes import publish_scoped
from tests.support.agent_run import AgentRun, gateway_unavailable, media_component_available
from tests.support.collector import Collector
from tests.support.enforce_harness import wait_for
from tests.support.media import LoopMedium

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]

GROUP = "财务部"
CELL = "unclassified.personal.public"          # default audit: a plain file copies to a personal stick
SHARED = "uninspectable.personal.unsupported"  # a cell both host classes decide


def _after(agent: AgentRun, since: int) -> dict[str, str | None]:
    """What each cell changed to over the policy.applied events since `since` (an agent may
    apply version 1 before version 2, or go straight to 2)."""
    out: dict[str, str | None] = {}
    for e in agent.events("policy.applied", since):
        out.update({c: ch["after"] for c, ch in e["details"]["changed"].items()})
    return out


def test_group_and_class_cells_reach_only_their_hosts(tmp_path: Path, artifacts: Path) -> None:
    if media_component_available():
        pytest.skip(media_component_available())
    mode = "after_write" if gateway_unavailable() else "held"
    held = mode == "held"
    tmp = Path(tempfile.mkdtemp(prefix="baomi-scopes-"))
    agents: list[AgentRun] = []
    with Collector(tmp_path / "c") as collector:
        add_users(collector)
        sec, sys_ = login(collector, "sec1"), login(collector, "sys1")
        assert create_key(sec).status_code == 201
        pem = save_public_key(sec, tmp / "secadmin-policy.pub.pem")
        try:
            with LoopMedium("exfat", size_mb=64, workdir=tmp, loop_range=range(780, 800)) as loop:
                mp = loop.mount()
                (tmp / "fin").mkdir()
                (tmp / "lab").mkdir()
                fin = AgentRun(tmp / "fin", [loop], mode=mode, log_path=artifacts / "scopes-fin.log",
                               extra_toml=central_toml(collector, pem), host_name="财务-PC01")
                lab = AgentRun(tmp / "lab", [], mode=mode, log_path=artifacts / "scopes-lab.log",
                               extra_toml=central_toml(collector, pem, "[posture]\nenabled = false\n"),
                               host_name="实验室-PC02")
                lab.conf.write_text(lab.conf.read_text().replace('class = "unclassified"', 'class = "classified"', 1))
                agents += [fin, lab]
                fin.start()
                lab.start(ready=False)   # no media: ready when enrolled (below)

                def enrolled() -> dict[str, str] | None:
                    page = login(collector, "aud1").get("/hosts").text
                    ids = {name: aid for aid, name in re.findall(
                        r'<a href="/hosts/([^"]+)">([^<]+)</a>', page)}
                    return ids if {"财务-PC01", "实验室-PC02"} <= set(ids) else None
                ids = wait_for(enrolled, 60, "both agents to enroll")

                # the sysadmin makes the group and puts the finance host in it
                assert sys_.post("/hosts/groups", data={"name": GROUP, "csrf_token": csrf_of(sys_.get("/hosts").text)}
                                 ).status_code == 303
                fid = ids["财务-PC01"]
                assert sys_.post(f"/hosts/{fid}/group", data={"group": GROUP, "csrf_token": csrf_of(
                    sys_.get(f"/hosts/{fid}").text)}).status_code == 303

                # the secadmin: classified hosts block unsupported files, then the group blocks CELL
                since_f, since_l = fin.last_seq(), lab.last_seq()
                assert publish_scoped(sec, "class:classified", {SHARED: "block"}).status_code == 201
                assert publish_scoped(sec, f"group:{GROUP}", {CELL: "block"}).status_code == 201

                f = _policy(fin, "policy.applied", since_f, 60, version=2)
                assert f["details"]["scope"] == ["all", f"group:{GROUP}"]   # no cells for unclassified hosts as a class
                assert f["details"]["group"] == GROUP
                assert _after(fin, since_f)[CELL] == "block"
                assert _after(fin, since_f)[SHARED] == "audit"            # the classified hosts' block is not its own
                assert f["details"]["scoped_cells"] == {CELL: f"group:{GROUP}"}
                e = _copy(fin, mp, "fin.txt", held)
                assert e["kind"] == "file.blocked" and e["rule"] == CELL

                lv = _policy(lab, "policy.applied", since_l, 60, version=2)
                assert lv["details"]["scope"] == ["all", "class:classified"] and lv["details"]["group"] is None
                assert _after(lab, since_l)[SHARED] == "block"
                assert _after(lab, since_l)[CELL] == "audit"             # the group's block is not its own
                assert lv["details"]["scoped_cells"] == {SHARED: "class:classified"}

                wait_for(lambda: login(collector, "aud1").get("/policy/hosts?version=central:2").text.count(
                    'data-agent="') == 2, 30, "the policy page to show both hosts on version 2")
                loop.unmount()
        finally:
            for a in agents:
                a.stop()
                a.cleanup_mounts()
