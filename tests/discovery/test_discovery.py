"""Discovery on a real directory tree with marked files, scanned by the real content engine:
the full pass finds them, an incremental pass reads only what changed, and a file removed or
declassified is recorded as resolved."""
from __future__ import annotations

import calendar
import os
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from baomi.agent.config import load
from baomi.agent.discovery.run import Busy, Discovery, found_by_level
from baomi.agent.scan.engine import Scanner

pytestmark = pytest.mark.timeout(180)

PLAIN = "会议纪要\n明天下午三点开会,讨论商业秘密保护协议的条款。\n"


def config(tmp: Path, **discovery: Any) -> Path:
    settings = {"paths": [str(tmp / "home"), str(tmp / "srv")], "cpu_share": 1.0, **discovery}
    cfg = {"host": {"class": "unclassified", "name": "desk"}, "paths": {"state_dir": str(tmp / "state")},
           "discovery": settings}
    path = tmp / "agent.toml"
    path.write_bytes(tomli_w.dumps(cfg).encode())
    return path


def tree(tmp: Path) -> dict[str, Path]:
    files = {"secret": tmp / "home/zhang/文档/规划.txt", "confidential": tmp / "home/zhang/报表.txt",
             "plain": tmp / "home/zhang/纪要.txt", "internal": tmp / "srv/share/通知.txt",
             "cached": tmp / "home/zhang/.cache/copy.txt", "top": tmp / "srv/share/deep/a/b/计划.txt"}
    for p in files.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    files["secret"].write_text("机密★1年\n2027年经营规划\n", encoding="utf-8")
    files["confidential"].write_text("秘密★6个月\n财务报表\n", encoding="utf-8")
    files["plain"].write_text(PLAIN, encoding="utf-8")
    files["internal"].write_text("内部\n放假通知\n", encoding="utf-8")
    files["cached"].write_text("绝密★长期\n缓存里的副本\n", encoding="utf-8")  # excluded: */.cache
    files["top"].write_text("绝密★长期\n作战计划\n", encoding="utf-8")
    when = calendar.timegm((2025, 3, 4, 5, 6, 7))
    os.utime(files["secret"], (when, when))
    os.symlink(files["secret"], tmp / "srv/share/link.txt")  # never followed
    return files


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.events.append((kind, fields))
        return {"kind": kind, **fields}

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {f["details"]["path"]: f for k, f in self.events if k == kind}

    def clear(self) -> None:
        self.events.clear()

    def at_rest(self) -> dict[str, int]:
        """The by-level counts of the last discovery.finished (what the console shows per host)."""
        (last, *_) = [f for k, f in reversed(self.events) if k == "discovery.finished"]
        return last["details"]["at_rest"]


@pytest.fixture
def setup(tmp_path: Path):
    files = tree(tmp_path)
    cfg = load(config(tmp_path))
    rec = Recorder()
    with Scanner(cfg, jobs=1) as scanner:
        yield files, cfg, rec, Discovery(cfg, rec, scanner)


def test_full_pass_records_each_classified_file_with_level_evidence_owner_and_mtime(setup) -> None:
    files, cfg, rec, disc = setup
    stats = disc.run_pass()
    assert stats.complete and stats.files == 5 and stats.scanned == 5  # .cache pruned, the link not a file
    found = rec.of("file.found_at_rest")
    assert set(found) == {str(files["secret"]), str(files["confidential"]), str(files["top"])}
    top = found[str(files["top"])]
    assert top["severity"] == "critical" and found[str(files["secret"])]["severity"] == "high"
    d = found[str(files["secret"])]["details"]
    assert d["level"] == "secret" and d["reason"] == "found" and d["evidence"][0]["level"] == "secret"
    assert d["owner"]["uid"] == os.getuid() and found[str(files["secret"])]["user"]["uid"] == os.getuid()
    assert d["mtime"] == "2025-03-04T05:06:07Z"
    assert found[str(files["secret"])]["rule"] == "004 计算机规则 2"
    assert found[str(files["secret"])]["file"]["sha256"]
    assert found_by_level(cfg.state_dir) == {"secret": [str(files["secret"])], "confidential":
                                             [str(files["confidential"])], "top_secret": [str(files["top"])]}
    # what is held now, by level, internal included (it is on record though never reported)
    assert rec.at_rest() == {"internal": 1, "confidential": 1, "secret": 1, "top_secret": 1}


def test_incremental_pass_reads_only_changes_and_resolves_removed_and_declassified(setup) -> None:
    files, cfg, rec, disc = setup
    disc.run_pass()
    rec.clear()
    again = disc.run_pass()
    assert (again.scanned, again.hashed) == (0, 0)  # nothing changed: nothing read, nothing recorded
    assert [k for k, _ in rec.events] == ["discovery.finished"]
    files["top"].unlink()                                           # removed
    files["confidential"].write_text("财务报表(已解密)\n", encoding="utf-8")  # declassified
    files["plain"].write_text("机密★长期\n" + PLAIN, encoding="utf-8")      # newly marked
    st = files["secret"].stat()
    os.utime(files["secret"], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched, same content
    new = files["secret"].parent / "新建.txt"
    new.write_text("关于商业秘密的培训安排\n", encoding="utf-8")  # the word in running text is no marking
    stats = Discovery(cfg, rec, disc.scanner).run_pass()  # a restarted agent: the index is on disk
    assert stats.hashed == 3 and stats.scanned == 3  # plain, confidential (hash differs), new; secret's hash matched
    assert set(rec.of("file.found_at_rest")) == {str(files["plain"])}
    resolved = rec.of("file.at_rest_resolved")
    assert {p: f["details"]["reason"] for p, f in resolved.items()} == {
        str(files["top"]): "removed", str(files["confidential"]): "declassified"}
    assert resolved[str(files["top"])]["details"]["was_level"] == "top_secret"
    assert str(files["top"]) not in sum(found_by_level(cfg.state_dir).values(), [])
    # the top secret file gone, the confidential one declassified, the plain one now secret
    assert rec.at_rest() == {"internal": 1, "confidential": 0, "secret": 2, "top_secret": 0}


def test_a_level_raised_is_recorded_again_and_exclusions_prune_whole_folders(tmp_path: Path) -> None:
    files = tree(tmp_path)
    cfg = load(config(tmp_path, exclude=["*/srv/share/deep"]))
    rec = Recorder()
    with Scanner(cfg, jobs=1) as scanner:
        disc = Discovery(cfg, rec, scanner)
        disc.run_pass()
        assert str(files["top"]) not in rec.of("file.found_at_rest")
        assert str(files["cached"]) in rec.of("file.found_at_rest")  # exclude replaced the defaults
        rec.clear()
        files["secret"].write_text("绝密★长期\n2027年经营规划\n", encoding="utf-8")
        disc.run_pass()
    f = rec.of("file.found_at_rest")[str(files["secret"])]
    assert (f["details"]["reason"], f["details"]["level"], f["severity"]) == ("level_changed", "top_secret", "critical")


def test_an_interrupted_pass_resolves_nothing_and_two_passes_never_run_at_once(setup) -> None:
    import fcntl
    import threading
    files, cfg, rec, disc = setup
    disc.run_pass()
    rec.clear()
    files["top"].unlink()
    stop = threading.Event()
    stop.set()
    assert disc.run_pass(stop=stop).complete is False and rec.events == []  # not even discovery.finished
    with open(cfg.state_dir / "discovery.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(Busy):
            disc.run_pass()
    assert set(rec.of("file.at_rest_resolved")) == set()
    disc.run_pass()
    assert set(rec.of("file.at_rest_resolved")) == {str(files["top"])}


def test_the_cpu_share_makes_the_pass_rest_in_proportion(tmp_path: Path) -> None:
    tree(tmp_path)
    cfg = load(config(tmp_path, cpu_share=0.2))
    pauses: list[float] = []
    with Scanner(cfg, jobs=1) as scanner:
        stats = Discovery(cfg, Recorder(), scanner, sleep=pauses.append).run_pass()
    assert len(pauses) == stats.scanned == 5
    assert sum(pauses) == pytest.approx(stats.busy_s * 4, rel=1e-6)  # work is 1/5 of the time


def test_marked_file_in_an_archive_with_an_unreadable_member_is_found(tmp_path: Path) -> None:
    """A zip of a marked plan and a program is not inspectable as a whole (the program
    carries no text), which used to keep it off the record although the marking was read."""
    import zipfile
    tree(tmp_path)
    bundle = tmp_path / "home/zhang/备份.zip"
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr("计划.txt", "机密★1年\n2027年经营规划\n")
        z.writestr("tool", Path("/bin/true").read_bytes())
    cfg = load(config(tmp_path))
    rec = Recorder()
    with Scanner(cfg, jobs=1) as scanner:
        Discovery(cfg, rec, scanner).run_pass()
    found = rec.of("file.found_at_rest")[str(bundle)]
    assert found["details"]["level"] == "secret" and found["file"]["inspectable"] is False
