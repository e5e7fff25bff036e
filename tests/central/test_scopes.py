"""Scoped policy through the console's HTTP interface (docs/policy.md "Scopes"): the system
administrator names a host group and puts a host in it; the security administrator sets
cells for that group and for a host class as the form posts them; the one signed document
carries every scope and the membership; the system administrator cannot publish; membership
changes wait for the next signature; the auditor sees it all. SQLite and PostgreSQL."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from baomi.common import central as rules
from baomi.service.central import default_cells
from tests.central.conftest import PASSPHRASE, add_users, create_key, csrf_of, current_cells, login, save_public_key
from tests.support.collector import Collector, SigningAgent

pytestmark = pytest.mark.timeout(300)

GROUP = "财务部"
CELL = "unclassified.personal.public"
SHARED = "uninspectable.personal.unsupported"   # a cell both host classes decide


def publish_scoped(sec: httpx.Client, scope: str, changes: dict[str, str]) -> httpx.Response:
    """What the browser posts from the policy page opened in one scope."""
    page = sec.get(f"/policy?scope={quote(scope)}").text
    cells = current_cells(page)
    assert cells, "no editable cells"
    cells.update(changes)
    data = {f"cell.{k}": v for k, v in cells.items()}
    data.update(passphrase=PASSPHRASE, csrf_token=csrf_of(page), scope=scope)
    return sec.post("/policy", data=data)


def fetch(collector: Collector, agent: SigningAgent, pub) -> dict:
    got = httpx.get(f"{collector.url}/api/v1/policy", headers={"X-Baomi-Agent": agent.agent_id})
    assert got.status_code == 200
    return rules.verify(got.json(), pub)


def test_group_and_class_cells_published_through_the_console(tmp_path: Path, database: str | None) -> None:
    with Collector(tmp_path / "c", database) as collector:
        add_users(collector)
        sec, sys_, aud = login(collector, "sec1"), login(collector, "sys1"), login(collector, "aud1")
        assert create_key(sec).status_code == 201
        pub = serialization.load_pem_public_key(save_public_key(sec, tmp_path / "k.pem").read_bytes())
        fin, other = SigningAgent(collector.url), SigningAgent(collector.url)
        assert fin.enroll(collector.token(), name="财务-PC01").status_code == 200
        assert other.enroll(collector.token(), name="研发-PC02").status_code == 200

        # the sysadmin names the group and puts one host in it; the secadmin cannot
        assert sys_.post("/hosts/groups", data={"name": GROUP, "csrf_token": csrf_of(sys_.get("/hosts").text)}
                         ).status_code == 303
        bad = sys_.post("/hosts/groups", data={"name": GROUP, "csrf_token": csrf_of(sys_.get("/hosts").text)})
        assert bad.status_code == 400   # exists already
        r = sys_.post(f"/hosts/{fin.agent_id}/group",
                      data={"group": GROUP, "csrf_token": csrf_of(sys_.get(f"/hosts/{fin.agent_id}").text)})
        assert r.status_code == 303
        assert f'data-group="{GROUP}"' in sys_.get("/hosts").text
        csrf = csrf_of(sec.get("/policy").text)
        assert sec.post("/hosts/groups", data={"name": "x", "csrf_token": csrf}).status_code == 403
        assert sec.post(f"/hosts/{other.agent_id}/group", data={"group": GROUP, "csrf_token": csrf}).status_code == 403

        # the policy page offers the scopes; the group's cells inherit from all until set
        page = sec.get("/policy").text
        for k in ("all", "class:classified", "class:unclassified", f"group:{GROUP}"):
            assert f'data-scope="{k}"' in page
        gpage = sec.get(f"/policy?scope={quote('group:' + GROUP)}").text
        assert f'data-cell="{CELL}" data-set="inherited"' in gpage
        assert current_cells(gpage)[CELL] == "inherit"
        assert "pending-membership" in gpage        # the sysadmin's change is not signed yet

        # the secadmin sets one cell for the group, one for classified hosts
        r = publish_scoped(sec, f"group:{GROUP}", {CELL: "block"})
        assert r.status_code == 201, r.text[:2000]
        assert f'data-cell="{CELL}" data-set="here"' in r.text and "pending-membership" not in r.text
        r = publish_scoped(sec, "class:classified", {SHARED: "block"})
        assert r.status_code == 201, r.text[:2000]
        assert f'data-cell="{CELL}"' not in r.text    # an unclassified cell is not a classified host's
        doc = fetch(collector, fin, pub)
        assert doc["version"] == 2
        assert doc["scopes"] == {f"group:{GROUP}": {CELL: "block"}, "class:classified": {SHARED: "block"}}
        assert doc["groups"] == {GROUP: [fin.agent_id]}
        assert doc["cells"][CELL] == "audit" and doc["cells"][SHARED] == default_cells()[SHARED]   # all: unchanged
        assert rules.resolve(doc, "unclassified", fin.agent_id).cells[CELL] == "block"
        assert rules.resolve(doc, "unclassified", other.agent_id).cells[CELL] == "audit"
        assert rules.resolve(doc, "classified", other.agent_id).cells[SHARED] == "block"

        # a cell set back to inherit leaves the scope; the edit of "all" keeps the scopes
        r = publish_scoped(sec, "class:classified", {SHARED: "inherit"})
        assert r.status_code == 201
        r = publish_scoped(sec, "all", {"unclassified.personal.internal": "block"})
        assert r.status_code == 201
        doc = fetch(collector, fin, pub)
        assert doc["version"] == 4 and doc["scopes"] == {f"group:{GROUP}": {CELL: "block"}}
        assert doc["cells"]["unclassified.personal.internal"] == "block"

        # a cell of the other class is refused in a class scope; the sysadmin cannot publish
        csrf = csrf_of(sec.get("/policy").text)
        bad = sec.post("/policy", data={f"cell.{CELL}": "block", "scope": "class:classified",
                                        "passphrase": PASSPHRASE, "csrf_token": csrf})
        assert bad.status_code == 400
        bad = sec.post("/policy", data={f"cell.{CELL}": "block", "scope": "group:无此组",
                                        "passphrase": PASSPHRASE, "csrf_token": csrf})
        assert bad.status_code == 400
        r = sys_.post("/policy", data={f"cell.{CELL}": "allow", "scope": f"group:{GROUP}", "passphrase": PASSPHRASE,
                                       "csrf_token": csrf_of(sys_.get("/tokens").text)})
        assert r.status_code == 403
        assert fetch(collector, fin, pub)["version"] == 4

        # the sysadmin moves the other host into the group: not in force until signed
        r = sys_.post(f"/hosts/{other.agent_id}/group",
                      data={"group": GROUP, "csrf_token": csrf_of(sys_.get(f"/hosts/{other.agent_id}").text)})
        assert r.status_code == 303
        assert "group-pending" in sys_.get(f"/hosts/{other.agent_id}").text
        assert fetch(collector, fin, pub)["groups"] == {GROUP: [fin.agent_id]}
        assert other.agent_id in sec.get("/policy").text   # the secadmin sees what the next version signs
        r = publish_scoped(sec, "all", {})
        assert r.status_code == 201
        assert sorted(fetch(collector, fin, pub)["groups"][GROUP]) == sorted([fin.agent_id, other.agent_id])

        # which hosts run which version
        for a in (fin, other):
            a.send([a.event("agent.heartbeat", details={"version": "t", "policy_version": "central:5",
                                                        "policy_applied_at": "2026-12-01T11:00:00Z"})])
        page = aud.get("/policy").text
        m = re.search(r'<tr data-version="central:5">.*?</tr>', page, re.S)
        assert m and ">2</a>" in m.group(0), page[-3000:]
        hosts = aud.get("/policy/hosts?version=central:5").text
        assert "财务-PC01" in hosts and "研发-PC02" in hosts and GROUP in hosts

        # the auditor's trail
        changed = collector.stored(kind="console.group_changed")
        assert [(e["details"]["action"], e["user"]["name"]) for e in changed] == \
            [("created", "sys1"), ("assigned", "sys1"), ("assigned", "sys1")]
        assert changed[1]["details"]["after"] == GROUP and changed[1]["details"]["before"] is None
        published = {e["details"]["version"]: e["details"] for e in collector.stored(kind="console.policy_published")}
        assert published[1]["scope"] == f"group:{GROUP}"
        assert published[1]["changes"] == {CELL: {"before": None, "after": "block"}}
        assert published[1]["membership"] == {fin.agent_id: {"before": None, "after": GROUP}}
        assert published[2]["membership"] == {}
        assert published[3]["scope"] == "class:classified"
        assert published[3]["changes"] == {SHARED: {"before": "block", "after": None}}
        assert published[5]["membership"] == {other.agent_id: {"before": None, "after": GROUP}}
        trail = aud.get("/audit").text
        assert "console.group_changed" in trail and "console.policy_published" in trail

        # the sysadmin deletes the group: its hosts are in no group and, once signed, its cells are gone
        r = sys_.post("/hosts/groups/delete", data={"name": GROUP, "csrf_token": csrf_of(sys_.get("/hosts").text)})
        assert r.status_code == 303
        deleted = collector.stored(kind="console.group_changed")[-1]["details"]
        assert deleted["action"] == "deleted" and sorted(deleted["members"]) == sorted([fin.agent_id, other.agent_id])
        assert fetch(collector, fin, pub)["scopes"] == {f"group:{GROUP}": {CELL: "block"}}   # until signed
        assert publish_scoped(sec, "all", {}).status_code == 201
        doc = fetch(collector, fin, pub)
        assert "scopes" not in doc and "groups" not in doc   # nothing scoped is left: the old format
        last = collector.stored(kind="console.policy_published")[-1]["details"]
        assert last["scopes_dropped"] == [f"group:{GROUP}"] and last["groups_removed"] == [GROUP]
