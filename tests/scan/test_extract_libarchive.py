"""Archives read through Debian's libarchive: RAR (the archive of Chinese Windows
offices), CAB, ISO 9660, cpio, XAR, ar and .deb, and zstd/lz4/lzip/compress/lzma
streams, written by the real tools (bsdtar, gcab, dpkg-deb, zstd, lz4, lzip) where
Debian has one and by tests/support/docs.rar4 for RAR, which no tool in Debian main
writes. These were `unsupported`, so a marked document in a RAR reached a personal
medium with only an audit."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from baomi.agent.scan.rules import RuleSet
from baomi.common.levels import Level
from tests.support import docs
from tests.support.skips import need_tools

from .extracted import rules, verdict  # noqa: F401 (rules: a fixture)

MARKED = "机密★5年\n关于年度采购计划的通知\n".encode()
NAME = "通知/机密方案.txt"





@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "in" / "通知").mkdir(parents=True)
    (tmp_path / "in" / NAME).write_bytes(MARKED)
    (tmp_path / "in" / "说明.txt").write_text("会议室预订规则\n", encoding="utf-8")
    return tmp_path / "in"


def test_marked_document_in_a_rar_is_found_with_its_member_name(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, docs.rar4({NAME: MARKED, "说明.txt": "会议室预订规则\n".encode()}))
    assert ex.type == "application/x-rar" and ex.inspectable and level == Level.SECRET
    assert ev[0].location == {"line": 1, "member": NAME} and ev[0].zone == "first_page_top"


def test_password_protected_rar_member_is_encrypted_and_the_others_are_still_read(rules: RuleSet) -> None:
    locked = docs.rar4({"锁定.txt": b"\x8e\x11" * 40}, encrypted=True)
    ex, ev, level = verdict(rules, locked)
    assert not ex.inspectable and ex.reason == "encrypted" and "锁定.txt" in ex.detail
    outer = docs.zip_of({"locked.rar": locked, "open.txt": MARKED})
    ex, ev, level = verdict(rules, outer)
    assert ex.reason == "encrypted" and level == Level.SECRET   # the open member's marking still counts


def test_truncated_rar_is_corrupt_not_a_crash(rules: RuleSet) -> None:
    data = docs.rar4({NAME: MARKED * 50})
    ex, ev, level = verdict(rules, data[:len(data) // 2])
    assert not ex.inspectable and ex.reason == "corrupt" and "damaged archive" in ex.detail


@pytest.mark.parametrize("fmt", ["cpio", "iso9660", "xar", "ar", "7zip"])
def test_archive_formats_written_by_bsdtar(rules: RuleSet, folder: Path, tmp_path: Path, fmt: str) -> None:
    need_tools("bsdtar")
    out = tmp_path / f"out.{fmt}"
    names = ["说明.txt", NAME] if fmt != "ar" else ["说明.txt"]   # ar keeps no folders
    if fmt == "ar":
        (folder / "方案.txt").write_bytes(MARKED)
        names.append("方案.txt")
    subprocess.run(["bsdtar", "--format", fmt, "-cf", str(out), *names], cwd=folder, check=True)
    ex, ev, level = verdict(rules, out.read_bytes())
    assert ex.inspectable and level == Level.SECRET, (ex.type, ex.reason, ex.detail)
    assert ev[0].location["member"] in (NAME, "方案.txt")


@pytest.mark.parametrize("flt", ["zstd", "lz4", "lzip", "lzma", "compress"])
def test_tar_in_a_compressed_stream(rules: RuleSet, folder: Path, tmp_path: Path, flt: str) -> None:
    need_tools("bsdtar", *([flt] if flt in ("zstd", "lz4", "lzip") else []))
    out = tmp_path / f"out.tar.{flt}"
    subprocess.run(["bsdtar", f"--{flt}", "-cf", str(out), NAME], cwd=folder, check=True)
    ex, ev, level = verdict(rules, out.read_bytes())
    assert ex.inspectable and level == Level.SECRET and ev[0].location["member"] == NAME, (ex.type, ex.detail)


@pytest.mark.parametrize("tool", [["zstd", "-q", "-c"], ["lz4", "-q", "-c"], ["lzip", "-c"]])
def test_single_file_compressed_by_the_command_line_tools(rules: RuleSet, folder: Path, tool: list[str]) -> None:
    need_tools(tool[0])
    data = subprocess.run([*tool, str(folder / NAME)], capture_output=True, check=True).stdout
    ex, ev, level = verdict(rules, data)
    assert ex.inspectable and level == Level.SECRET, (ex.type, ex.detail)


def test_cabinet_written_by_gcab(rules: RuleSet, folder: Path, tmp_path: Path) -> None:
    need_tools("gcab")
    subprocess.run(["gcab", "-c", "-z", str(tmp_path / "out.cab"), NAME], cwd=folder, check=True)
    ex, ev, level = verdict(rules, (tmp_path / "out.cab").read_bytes())
    assert ex.type == "application/vnd.ms-cab-compressed" and level == Level.SECRET, (ex.reason, ex.detail)


def test_debian_package_with_a_marked_file_is_read_down_to_it(rules: RuleSet, tmp_path: Path) -> None:
    need_tools("dpkg-deb")
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text("Package: notes\nVersion: 1.0\nArchitecture: all\n"
                                              "Maintainer: x <x@example.org>\nDescription: notes\n")
    (root / "usr/share/doc/notes").mkdir(parents=True)
    (root / "usr/share/doc/notes/方案.txt").write_bytes(MARKED)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(tmp_path / "n.deb")],
                   check=True, capture_output=True)
    ex, ev, level = verdict(rules, (tmp_path / "n.deb").read_bytes())
    assert level == Level.SECRET and ev[0].location["member"].endswith("方案.txt"), (ex.type, ex.detail)


def test_zstd_bomb_stops_at_the_ratio(rules: RuleSet, tmp_path: Path) -> None:
    need_tools("zstd")
    bomb = subprocess.run(["zstd", "-q", "-19", "-c"], input=b"x" * (300 * 1024 * 1024), capture_output=True,
                          check=True).stdout
    ex, ev, level = verdict(rules, bomb)
    assert not ex.inspectable and ex.reason == "limit_exceeded" and "max_ratio" in ex.detail


def test_without_libarchive_such_archives_fail_closed(tmp_path: Path) -> None:
    """A machine without libarchive13: a RAR is `unreadable` (damaged_or_over_limits,
    blocked toward personal media), never `unsupported` and recorded."""
    (tmp_path / "a.rar").write_bytes(docs.rar4({NAME: MARKED}))
    code = ("import sys; sys.modules['libarchive'] = None\n"
            "from baomi.agent.scan.extract import extract\n"
            "from baomi.agent.scan.limits import Limits\n"
            f"ex = extract({str(tmp_path / 'a.rar')!r}, Limits())\n"
            "print(ex.inspectable, ex.reason, ex.detail)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("False unreadable") and "libarchive is not available" in out


def test_the_scan_command_reads_a_rar_in_its_memory_capped_workers(tmp_path: Path) -> None:
    (tmp_path / "资料.rar").write_bytes(docs.rar4({NAME: MARKED}))
    r = subprocess.run([sys.executable, "-m", "baomi.agent.cli", "scan", "--json", str(tmp_path / "资料.rar")],
                       capture_output=True, text=True, timeout=90)
    row = json.loads(r.stdout)
    assert r.returncode == 1 and row["level"] == "secret" and row["inspectable"] is True, r.stderr
    assert row["evidence"][0]["location"]["member"] == NAME


def test_libarchive_messages_of_every_kind_are_read_as_text() -> None:
    """libarchive-c's ArchiveError.msg is text, undecoded bytes or None: a None made the
    retry as a single compressed stream fail with a TypeError instead of reading it."""
    import libarchive
    from baomi.agent.scan.extractors.archive import _message
    assert _message(libarchive.ArchiveError("Unrecognized archive format")) == "Unrecognized archive format"
    assert _message(libarchive.ArchiveError("Encrypted file is unsupported".encode())) == "Encrypted file is unsupported"
    assert _message(libarchive.ArchiveError(None)) == ""
