"""Markings in bytes no reader understands (zone `raw`): a marked text behind a program's,
a sound's or a few NUL bytes' header, a row of a real SQLite database, UTF-16 strings in
a program. Such files were `unsupported` and, toward a personal medium, only recorded:
four bytes of header let a secret through. Real programs, libraries and films stay
public; a text behind a byte-order mark of another encoding is read for what it is."""
from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from baomi.agent.scan.extractors import raw
from baomi.agent.scan.rules import RuleSet
from baomi.common.levels import Level
from baomi.common.rulefile import RuleError, parse_file

from .extracted import rules, verdict  # noqa: F401 (rules: a fixture)

MARKED = "机密★5年\n关于年度采购计划的通知\n".encode()





def wav(body: bytes) -> bytes:
    """A real RIFF/WAVE header (libmagic: audio/x-wav) before body."""
    return (b"RIFF" + struct.pack("<I", len(body) + 36) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 2, 44100, 176400, 4, 16) + b"data" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize("disguise", ["program", "nul_bytes", "id3_header", "wave_header"])
def test_marked_text_behind_a_foreign_header_is_found(rules: RuleSet, disguise: str) -> None:
    head = {"program": Path("/bin/true").read_bytes(), "nul_bytes": b"\0\0\0\0",
            "id3_header": b"ID3\x03\x00\x00\x00\x00\x00\x00", "wave_header": b""}[disguise]
    data = wav(MARKED) if disguise == "wave_header" else head + MARKED
    ex, ev, level = verdict(rules, data)
    assert level == Level.SECRET, (ex.type, ex.reason)
    assert not ex.inspectable and ex.reason == "unsupported"   # still not read as a document
    assert {e.zone for e in ev} == {"raw"} and ev[0].rule == "cn.national.star"
    assert ev[0].location["encoding"] == "utf-8" and ev[0].location["offset"] <= len(head) + 45


def test_marked_row_of_a_real_sqlite_database_is_found(rules: RuleSet, tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    with sqlite3.connect(db) as c:
        c.execute("create table notes(id integer primary key, body text)")
        c.executemany("insert into notes(body) values (?)", [("会议室预订规则",) * 1] * 50)
        c.execute("insert into notes(body) values (?)", (MARKED.decode(),))
    ex, ev, level = verdict(rules, db.read_bytes())
    assert level == Level.SECRET and ex.type == "application/vnd.sqlite3" and ev[0].zone == "raw"


def test_marking_typed_into_vim_is_found_in_its_swap_file(rules: RuleSet, tmp_path: Path) -> None:
    """vim keeps the text being edited in `.name.swp` beside the file: on a stick, the swap
    file of a document being edited there is written before the document is saved."""
    vim = shutil.which("vim") or shutil.which("vim.tiny")
    if vim is None:
        pytest.skip("needs vim or vim.tiny (Debian vim-tiny)")
    (tmp_path / "x.txt").write_text("会议室预订规则\n", encoding="utf-8")
    subprocess.run([vim, "-u", "NONE", "-N", "-es", "-c", 'call append(0, "机密★1年")', "-c", "preserve",
                    "-c", f"!cp .x.txt.swp {tmp_path / 'kept.swp'}", "-c", "q!", "x.txt"],
                   cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)}, timeout=30, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)
    ex, ev, level = verdict(rules, (tmp_path / "kept.swp").read_bytes())
    assert level == Level.SECRET and ev[0].zone == "raw" and ex.reason == "unsupported"


@pytest.mark.parametrize("enc", ["utf-16-le", "utf-16-be", "gb18030"])
def test_marking_stored_as_a_programs_string_in_any_encoding_is_found(rules: RuleSet, enc: str) -> None:
    text = "秘密★6个月".encode(enc)
    data = b"\x7fELF\x02\x01\x01" + bytes(57) + os.urandom(3001) + b"\0\0" + text + b"\0\0" + os.urandom(999)
    ex, ev, level = verdict(rules, data)
    assert level == Level.CONFIDENTIAL and ev[0].location["encoding"] == enc


def test_marked_text_disguised_as_a_sound_inside_an_archive_is_found(rules: RuleSet) -> None:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("music/track01.wav", wav(MARKED))
        z.writestr("readme.txt", "一张专辑\n")
    ex, ev, level = verdict(rules, buf.getvalue())
    assert level == Level.SECRET and ev[0].location["member"] == "music/track01.wav"


def test_programs_libraries_and_a_film_stay_public(rules: RuleSet) -> None:
    """Hard negatives: real binaries of this machine (with their own Chinese and English
    strings) and random media bytes hold no ★ marking."""
    paths = [Path(p) for p in ("/bin/true", "/bin/ls", "/usr/bin/python3", "/bin/bash")] + \
        sorted(Path("/usr/lib/x86_64-linux-gnu").glob("libc.so*"))[:1] + \
        sorted(Path("/usr/share/locale/zh_CN/LC_MESSAGES").glob("*.mo"))[:20]
    checked = 0
    for p in paths:
        if p.is_file():
            ex, ev, level = verdict(rules, p.read_bytes())
            assert level == Level.PUBLIC, (p, [(e.rule, e.location) for e in ev])
            checked += 1
    assert checked >= 4
    ex, ev, level = verdict(rules, wav(random.Random(3).randbytes(4_000_000)))
    assert level == Level.PUBLIC and ex.reason == "unsupported" and ev == []


def test_bytes_padded_with_the_literal_to_hide_a_marking_are_over_the_limits(rules: RuleSet) -> None:
    """More places to look at than any film holds: judged as over the limits (which fails
    closed toward personal media) instead of searched only in part."""
    n = 6000   # one literal every 603 bytes: windows too far apart to merge
    data = b"\0\0\0\0" + b"".join(b"\0" * 600 + "密".encode() for _ in range(n)) + MARKED
    assert raw.MIN_WINDOWS + len(data) // raw.BYTES_PER_WINDOW < n
    ex, ev, level = verdict(rules, data)
    assert not ex.inspectable and ex.reason == "limit_exceeded" and "places" in (ex.detail or "")


def test_raw_zone_is_only_for_marking_rules_with_literals(tmp_path: Path) -> None:
    f = tmp_path / "90-site.toml"
    f.write_text('[[rule]]\nid = "site.any"\nkind = "marking"\nzones = ["raw"]\npattern = "X"\nlevel = "secret"\n')
    with pytest.raises(RuleError, match="raw zone is for marking rules with `requires`"):
        parse_file(f)


@pytest.mark.parametrize("mark, enc", [(b"\xff\xfe", "utf-8"), (b"\xfe\xff", "gb18030"), (b"\xef\xbb\xbf", "gbk")])
def test_text_behind_a_byte_order_mark_of_another_encoding_is_read_for_what_it_is(rules: RuleSet, mark: bytes,
                                                                                    enc: str) -> None:
    ex, ev, level = verdict(rules, mark + MARKED.decode().encode(enc))
    assert level == Level.SECRET and ex.inspectable and ev[0].zone == "first_page_top"


@pytest.mark.parametrize("enc", ["utf-16-le", "utf-16-be"])
def test_text_behind_its_own_utf16_mark_is_read_as_before(rules: RuleSet, enc: str) -> None:
    mark = b"\xff\xfe" if enc.endswith("le") else b"\xfe\xff"
    ex, ev, level = verdict(rules, mark + MARKED.decode().encode(enc))
    assert level == Level.SECRET and ev[0].zone == "first_page_top"


def test_the_scan_command_reads_markings_in_bytes_of_no_known_format(tmp_path: Path) -> None:
    """Through the worker pool, as the agent scans: the rules' raw literals reach the workers."""
    (tmp_path / "tool").write_bytes(Path("/bin/true").read_bytes() + MARKED)
    r = subprocess.run([sys.executable, "-m", "baomi.agent.cli", "scan", "--json", str(tmp_path / "tool")],
                       capture_output=True, text=True, timeout=90)
    row = json.loads(r.stdout)
    assert r.returncode == 1 and row["level"] == "secret" and row["evidence"][0]["zone"] == "raw", r.stderr
    assert row["inspectable"] is False and row["reason"] == "unsupported"
