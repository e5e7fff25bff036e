"""Files that are what they seem only to a forgiving reader: a PDF whose header or
cross-reference table is broken (pdfium refuses it, a repairing reader such as pypdf
or `qpdf --repair` gives its text back), a sparse file's holes, and 7-bit text in
ISO-2022-KR. Each is judged for what a reader gets out of it, and only a file that
is really damaged counts as not inspectable."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from baomi.common.levels import Level
from tests.scan.extracted import rules, verdict  # noqa: F401  (rules is a fixture)
from tests.support import docs

MARKED = docs.pdf([["机密★1年", "关于工作的通知"], ["第二页"]])


@pytest.mark.parametrize("how", ["header broken", "header cut off", "junk, then a broken header"])
def test_a_pdf_with_a_broken_header_is_damaged_and_its_marking_still_counts(rules, how: str) -> None:
    """Regression: with its %PDF- header broken an uncompressed PDF read as plain text
    (inspectable and public, its CID-coded words unseen), and a compressed one as an
    unknown binary (unsupported: an audit toward a personal medium); a repairing reader
    gives the marked text back on the other side."""
    data = {"header broken": MARKED.replace(b"%PDF-", b"%/XX-", 1),
            "header cut off": MARKED[MARKED.index(b"1 0 obj"):],
            "junk, then a broken header": b"\x00\x15JUNK\r\n" + MARKED.replace(b"%PDF-", b"%/XX-", 1)}[how]
    ex, ev, level = verdict(rules, data)
    assert (ex.type, ex.inspectable, ex.reason) == ("application/pdf", False, "corrupt"), ex.detail
    assert level == Level.SECRET and "first_page_top" in {e.zone for e in ev}
    assert "recovered by a lenient reader" in ex.detail


def test_a_damaged_pdf_nothing_reads_is_corrupt_not_unsupported(rules) -> None:
    """PDF objects with nothing readable left (qpdf's fuzz inputs look like this): the file
    is a damaged PDF, which fails closed, not a file of an unknown kind, which is audited."""
    data = b"\x15\x36Cony[s[\ntrailer\r<<\n/Root 2 0 R>>\n6 0 obj << /PageMode /UseNone >>\nendobj\n" + bytes(range(256)) * 8
    ex, ev, level = verdict(rules, data)
    assert (ex.inspectable, ex.reason, ex.type) == (False, "corrupt", "application/pdf"), ex.detail
    assert level == Level.PUBLIC and ev == []


def test_prose_about_pdf_syntax_stays_text(rules) -> None:
    """Hard negative: a note that quotes PDF syntax is read as the text it is."""
    note = "PDF 的结构说明：\n1 0 obj << /Type /Catalog >>\ntrailer << /Root 1 0 R >>\n以上为目录与尾部。\n"
    ex, ev, level = verdict(rules, note.encode())
    assert (ex.type, ex.inspectable, level) == ("text/plain", True, Level.PUBLIC)


def test_a_note_that_mentions_a_pdf_header_is_text(rules) -> None:
    """Regression: libmagic calls anything with %PDF- in its first KiB a PDF, so a note
    that mentions the header failed to open as one and came back corrupt (blocked toward
    a personal medium); a marking in it went unseen."""
    note = "# 说明\nPDF 文件以 %PDF-1.7 开头, 见 <规范>。\n机密★1年\n".encode()   # markup: not plain prose
    ex, ev, level = verdict(rules, note)
    assert (ex.type, ex.inspectable, level) == ("text/plain", True, Level.SECRET), ex.detail


def test_a_pdf_after_a_line_of_text_is_still_a_pdf(rules) -> None:
    """Hard negative of the above: a real PDF behind a line of text is read as the PDF."""
    ex, ev, level = verdict(rules, "说明文字\n".encode() + MARKED)
    assert ex.type == "application/pdf" and ex.inspectable and level == Level.SECRET, ex.detail


def test_a_program_that_holds_pdf_signatures_is_not_a_damaged_pdf(rules) -> None:
    """Hard negative: an unknown binary with one PDF-like token past its first KiB."""
    data = b"\x7fBLOB" + bytes(range(256)) * 8 + b"1 0 obj << /Type /Catalog >> %PDF-1.4" + bytes(range(256)) * 4
    ex, _ev, _level = verdict(rules, data)
    assert ex.reason == "unsupported", ex.detail


def test_a_file_of_zeros_is_empty_not_unsupported(rules, tmp_path: Path) -> None:
    """A preallocated or sparse file with nothing written in it carries nothing to read."""
    f = tmp_path / "hole.img"
    with open(f, "wb") as out:
        out.truncate(4 << 20)
    ex, ev, level = verdict(rules, f.read_bytes())
    assert ex.inspectable and level == Level.PUBLIC and ev == []


def sparse_text(path: Path, blocks: list[tuple[int, str]]) -> Path:
    """A sparse file: text written at each offset, holes between (the way a program that
    seeks ahead writes it)."""
    with open(path, "wb") as f:
        for offset, text in blocks:
            f.seek(offset)
            f.write(text.encode("utf-8"))
        f.truncate(blocks[-1][0] + 65536)
    return path


def test_sparse_text_is_read_across_its_holes(rules, tmp_path: Path) -> None:
    f = sparse_text(tmp_path / "notes.txt", [(0, "会议纪要\n"), (1 << 20, "机密★1年\n关于工作的通知\n")])
    ex, ev, level = verdict(rules, f.read_bytes())
    assert ex.inspectable and level == Level.SECRET, (ex.type, ex.detail)


def test_sparse_text_member_of_a_tar_does_not_make_it_uninspectable(rules, tmp_path: Path) -> None:
    """GNU tar's --sparse keeps the holes as a map; its reader gives them back as zeros."""
    if shutil.which("tar") is None:
        pytest.skip("needs GNU tar to write a sparse archive")
    sparse_text(tmp_path / "notes.txt", [(0, "会议纪要\n"), (256 << 10, "秘密★6个月\n")])
    with open(tmp_path / "empty.db", "wb") as f:
        f.truncate(1 << 20)
    out = tmp_path / "a.tar"
    subprocess.run(["tar", "-cSf", str(out), "-C", str(tmp_path), "notes.txt", "empty.db"], check=True)
    ex, ev, level = verdict(rules, out.read_bytes())
    assert ex.inspectable and level == Level.CONFIDENTIAL, ex.detail


def test_zeros_with_a_few_stray_bytes_are_still_unsupported(rules) -> None:
    """Hard negative: a binary with short runs of zeros is no text with holes."""
    data = (b"\x01\x02\x03\x04" + b"\0" * 100) * 100
    ex, _ev, _level = verdict(rules, data)
    assert not ex.inspectable


def test_iso_2022_kr_text_is_text(rules, tmp_path: Path) -> None:
    """Korean in the 7-bit ISO-2022-KR that iconv writes: escapes and shifts that read as
    binary unless decoded."""
    text = "◎ 파이썬(Python)은 배우기 쉽고, 강력한 프로그래밍 언어입니다.\n機密 文書\n"
    if shutil.which("iconv") is None:
        pytest.skip("needs iconv to write ISO-2022-KR")
    data = subprocess.run(["iconv", "-f", "UTF-8", "-t", "ISO-2022-KR"], input=text.encode(), capture_output=True,
                          check=True).stdout
    assert b"\x1b$)C" in data and data.isascii()
    ex, _ev, level = verdict(rules, data)
    assert ex.inspectable and ex.type.startswith("text/"), ex.detail
    assert any("파이썬" in c.text for c in ex.chunks)


def test_sparse_file_on_disk_stays_sparse(tmp_path: Path) -> None:
    """The test above is about a real sparse file: the filesystem keeps its holes."""
    f = sparse_text(tmp_path / "s.txt", [(0, "a\n"), (8 << 20, "b\n")])
    assert os.stat(f).st_blocks * 512 < f.stat().st_size // 4


def test_a_sparse_tar_member_that_is_all_hole_is_not_unpacked(rules, tmp_path: Path) -> None:
    """Regression: a 600 MiB member with nothing written in it (GNU tar --sparse keeps only
    its map) was unpacked into 600 MiB of zeros and ran the worker out of memory, so a
    2 KiB archive came back limit_exceeded."""
    if shutil.which("tar") is None:
        pytest.skip("needs GNU tar to write a sparse archive")
    with open(tmp_path / "disk.img", "wb") as f:
        f.truncate(600 << 20)
    (tmp_path / "readme.txt").write_text("机密★1年\n", encoding="utf-8")
    out = tmp_path / "a.tar"
    subprocess.run(["tar", "--format=gnu", "-cSf", str(out), "-C", str(tmp_path), "disk.img", "readme.txt"], check=True)
    assert out.stat().st_size < 64 << 10
    # as the agent judges it: in a worker under its memory cap (memory_mb = 512)
    run = subprocess.run([sys.executable, "-m", "baomi.agent.cli", "scan", "--json", str(out)], capture_output=True,
                         text=True, timeout=120)
    got = json.loads(run.stdout)
    assert got["inspectable"] and got["level"] == "secret", got
