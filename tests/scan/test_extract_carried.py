"""Documents behind a prefix that their readers skip: a PDF after leading junk (readers
find the header within the first KiB), a self-extracting archive (a program with a zip,
RAR or 7z behind it; 7-Zip's own SFX module writes the real one) and a zip after text.
Each was `unsupported` or plain text, so a marked document dressed up this way reached
a personal medium with only an audit, or came back public."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from baomi.agent.scan.rules import RuleSet
from baomi.common.levels import Level
from tests.support import docs

from .extracted import rules, verdict  # noqa: F401 (rules: a fixture)

MARKED_TEXT = "机密★1年\n关于年度采购计划的通知\n".encode()
PROGRAM = Path("/usr/bin/true").read_bytes()     # an ELF stub, as an SFX module is
SEVEN_ZIP_SFX = Path("/usr/lib/p7zip/7zCon.sfx")  # p7zip-full's self-extracting module


def _marked_docx() -> bytes:
    return docs.docx(["机密★1年", "关于年度采购计划的通知"])


@pytest.mark.parametrize("junk", [b"\x00\x01junk\xff" * 30, "说明\n".encode() * 40], ids=["binary", "text"])
def test_marked_pdf_behind_leading_junk_is_read_as_its_readers_open_it(rules: RuleSet, junk: bytes) -> None:
    ex, ev, level = verdict(rules, junk + docs.pdf([["机密★1年", "正文"]]))
    assert level == Level.SECRET and ex.inspectable, (ex.type, ex.reason, ex.detail)
    assert {e.zone for e in ev} == {"first_page_top"} and ev[0].location["page"] == 1


def test_a_pdf_header_past_the_first_kib_is_not_a_pdf(rules: RuleSet) -> None:
    """Readers stop looking after 1 KiB: no guess beyond what they open."""
    ex, _ev, _level = verdict(rules, PROGRAM + docs.pdf([["正文"]]))
    assert not ex.inspectable and ex.reason == "unsupported" and ex.type != "application/pdf"


@pytest.mark.parametrize("archive", ["zip", "rar", "7z"])
def test_marked_document_in_a_self_extracting_program_is_found(rules: RuleSet, archive: str) -> None:
    members = {"采购/计划.docx": _marked_docx(), "说明.txt": "会议室预订规则\n".encode()}
    body = {"zip": docs.zip_of, "rar": docs.rar4, "7z": docs.sevenzip}[archive](members)
    ex, ev, level = verdict(rules, PROGRAM + body)
    assert level == Level.SECRET and ex.inspectable, (ex.type, ex.reason, ex.detail)
    assert ev[0].location["member"] == "采购/计划.docx"


@pytest.mark.skipif(not SEVEN_ZIP_SFX.exists() or not shutil.which("7z"), reason="p7zip-full's 7z and 7zCon.sfx are needed")
def test_marked_text_in_a_self_extracting_archive_written_by_7z(rules: RuleSet, tmp_path: Path) -> None:
    (tmp_path / "通知.txt").write_bytes(MARKED_TEXT)
    subprocess.run(["7z", "a", f"-sfx{SEVEN_ZIP_SFX}", str(tmp_path / "安装包.exe"), "通知.txt"],
                   cwd=tmp_path, check=True, capture_output=True)
    ex, ev, level = verdict(rules, (tmp_path / "安装包.exe").read_bytes())
    assert level == Level.SECRET and ex.type == "application/x-7z-compressed"
    assert ev[0].location == {"line": 1, "member": "通知.txt"}


def test_a_password_protected_self_extracting_archive_is_encrypted(rules: RuleSet) -> None:
    ex, _ev, _level = verdict(rules, PROGRAM + docs.sevenzip({"a.txt": MARKED_TEXT}, password="s3cret"))
    assert not ex.inspectable and ex.reason == "encrypted"     # fails closed toward personal media
    ex, _ev, _level = verdict(rules, PROGRAM + docs.rar4({"a.txt": MARKED_TEXT}, encrypted=True))
    assert not ex.inspectable and ex.reason == "encrypted"


def test_marked_document_zipped_behind_text_is_found(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, "会议纪要\n".encode() * 50 + docs.zip_of({"a.docx": _marked_docx()}))
    assert level == Level.SECRET and ev[0].location["member"] == "a.docx"


def test_a_rar_ending_in_a_stored_docx_is_read_as_rar() -> None:
    """libarchive's format bidding took such a RAR for the zip of its last member, so a
    password-protected one passed for inspectable and the member names were lost."""
    from baomi.agent.scan.extract import extract_data
    from .extracted import LIMITS
    ex = extract_data(docs.rar4({"a.docx": _marked_docx()}), LIMITS)
    assert ex.chunks[0].location == {"paragraph": 1, "member": "a.docx"}
    ex = extract_data(docs.rar4({"a.docx": _marked_docx()}, encrypted=True), LIMITS)
    assert not ex.inspectable and ex.reason == "encrypted"


def _programs_with_signatures() -> list[Path]:
    """Programs and libraries of this machine that hold an archive's signature as a
    constant (libarchive, 7-Zip): guesses that their readers refuse."""
    found = []
    for p in ("/usr/lib/x86_64-linux-gnu/libarchive.so.13", "/usr/lib/p7zip/7z.so", str(SEVEN_ZIP_SFX)):
        path = Path(os.path.realpath(p))
        if path.is_file():
            data = path.read_bytes()[:1 << 20]
            if b"Rar!\x1a\x07" in data or b"7z\xbc\xaf\x27\x1c" in data:
                found.append(path)
    return found


def test_programs_holding_an_archive_signature_stay_unsupported_not_damaged(rules: RuleSet) -> None:
    programs = _programs_with_signatures()
    if not programs:
        pytest.skip("no program here holds a RAR or 7z signature in its first MiB (libarchive13, p7zip-full)")
    for path in programs:
        ex, _ev, level = verdict(rules, path.read_bytes())
        assert ex.reason == "unsupported" and level == Level.PUBLIC, (path, ex.reason, ex.detail)
