"""The periodic checks on real files: an alternate passwd/shadow pair (ages, empty passwords,
once a day per account and finding, also across a restart) and NFS/Samba share files."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent.config import PostureSection
from baomi.agent.posture import checks as checks_mod
from baomi.agent.posture import sharing
from baomi.agent.posture.checks import Checks

DAY = 86400.0
NOW = 20_000 * DAY + 3600  # day 20000, 01:00 UTC

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/bash
bob:x:1001:1001:Bob:/home/bob:/bin/zsh
carol:x:1002:1002:Carol:/home/carol:/bin/bash
dave:x:1003:1003:Dave:/home/dave:/bin/bash
"""
SHADOW = """root:!:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
alice:$6$salt$hash:19900:0:99999:7:::
bob::20000:0:99999:7:::
carol:$6$salt$hash:19990:0:60:7:::
dave:$y$j9T$hash::0:99999:7:::
"""


class Recorder(list):
    def __call__(self, kind: str, **fields) -> dict:
        self.append({"kind": kind, **fields})
        return self[-1]


@pytest.fixture
def cfg(tmp_path: Path) -> PostureSection:
    (tmp_path / "passwd").write_text(PASSWD)
    (tmp_path / "shadow").write_text(SHADOW)
    return PostureSection(passwd_file=tmp_path / "passwd", shadow_file=tmp_path / "shadow",
                          nfs_exports=tmp_path / "exports", smb_conf=tmp_path / "smb.conf")


def _found(rec: Recorder) -> list[tuple]:
    return sorted((e["details"]["account"], e["details"]["finding"], e["severity"], e["details"]["age_days"])
                  for e in rec if e["kind"] == "host.password")


def test_password_findings_from_an_alternate_shadow(cfg: PostureSection, tmp_path: Path) -> None:
    rec = Recorder()
    Checks(rec, cfg, tmp_path, clock=lambda: NOW).passwords_once()
    assert _found(rec) == [("alice", "password_too_old", "high", 100),
                           ("bob", "empty_password", "critical", None),
                           ("dave", "password_age_unknown", "medium", None)]
    alice = next(e for e in rec if e["details"]["account"] == "alice")
    assert alice["user"] == {"uid": 1000, "name": "alice", "session": None}
    assert alice["details"]["max_age_days"] == 60 and alice["details"]["shell"] == "/bin/bash"
    assert alice["rule"] == "posture.password" and alice["action"] == "audit"


def test_once_a_day_per_account_also_across_a_restart(cfg: PostureSection, tmp_path: Path) -> None:
    clock = [NOW]
    rec = Recorder()
    checks = Checks(rec, cfg, tmp_path, clock=lambda: clock[0])
    assert checks.passwords_once() == 3
    clock[0] += 600
    assert checks.passwords_once() == 0
    again = Recorder()  # the agent restarted within the day: the state file remembers
    assert Checks(again, cfg, tmp_path, clock=lambda: clock[0]).passwords_once() == 0
    clock[0] = NOW + DAY
    assert Checks(again, cfg, tmp_path, clock=lambda: clock[0]).passwords_once() == 3
    assert [e["details"]["age_days"] for e in again if e["details"]["account"] == "alice"] == [101]


def test_a_stricter_maximum_and_a_fixed_password(cfg: PostureSection, tmp_path: Path) -> None:
    cfg.max_password_age_days = 5
    rec = Recorder()
    Checks(rec, cfg, tmp_path, clock=lambda: NOW).passwords_once()
    assert ("carol", "password_too_old", "high", 10) in _found(rec)
    (tmp_path / "shadow").write_text(SHADOW.replace("bob::20000", "bob:$6$new$hash:20000"))
    fresh = tmp_path / "fresh-state"  # nothing reported yet: only what is still wrong shows
    fresh.mkdir()
    later = Recorder()
    Checks(later, cfg, fresh, clock=lambda: NOW).passwords_once()
    assert "carol" in {e["details"]["account"] for e in later}
    assert "bob" not in {e["details"]["account"] for e in later}


def test_an_unreadable_shadow_is_one_config_problem(cfg: PostureSection, tmp_path: Path) -> None:
    cfg.shadow_file = tmp_path / "missing"
    rec = Recorder()
    checks = Checks(rec, cfg, tmp_path, clock=lambda: NOW)
    checks.passwords_once()
    checks.passwords_once()
    assert [e["kind"] for e in rec] == ["agent.config_problem"]
    assert "missing" in rec[0]["details"]["error"]


def test_share_files_are_reported_once_while_they_last(cfg: PostureSection, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # listeners are read for real in tests/posture (in a namespace); here only the files count
    monkeypatch.setattr(checks_mod.sharing, "listeners", lambda: [])
    (tmp_path / "exports.d").mkdir()
    (tmp_path / "exports").write_text("# comment\n/srv/a  10.0.0.0/8(rw) \\\n   192.0.2.0/24(ro)\n")
    (tmp_path / "exports.d/site.exports").write_text("/srv/b *(ro)\n")
    (tmp_path / "smb.conf").write_text("[global]\nworkgroup = X\n[homes]\nbrowseable = no\n"
                                       "[off]\npath = /srv/off\navailable = no\n")
    checks = Checks(Recorder(), cfg, tmp_path)
    first = checks.sharing_once()
    assert [(f["type"], f.get("path"), f.get("share")) for f in first] == [
        ("nfs", "/srv/a", None), ("nfs", "/srv/b", None), ("smb", "", "homes")]
    assert first[0]["clients"] == "10.0.0.0/8(rw) 192.0.2.0/24(ro)"
    assert checks.sharing_once() == []
    (tmp_path / "exports.d/site.exports").unlink()
    assert checks.sharing_once() == []
    (tmp_path / "exports.d/site.exports").write_text("/srv/b *(ro)\n")
    assert [f["path"] for f in checks.sharing_once()] == ["/srv/b"]  # back again: reported again


def test_missing_share_files_are_no_shares(tmp_path: Path) -> None:
    assert sharing.nfs_exports(tmp_path / "none") == [] and sharing.smb_shares(tmp_path / "none") == []
    (tmp_path / "smb.conf").write_bytes(b"\xff\xfe garbage [")
    assert sharing.smb_shares(tmp_path / "smb.conf") == []
