"""The types detect() settles without libmagic (signatures, prose) must be the ones
libmagic and the refiners would have given; whatever the shortcut cannot be sure of
still goes to libmagic."""
from __future__ import annotations

import io
import zipfile

import pytest

from baomi.agent.scan import detect as d
from tests.support import docs

PROSE = "关于做好年终工作的通知\n各部门：\n根据上级要求，现将有关事项通知如下。\n" * 40


@pytest.mark.parametrize("data", [
    PROSE.encode("utf-8"),
    PROSE.encode("utf-8-sig"),
    PROSE.encode("gb18030"),
    PROSE.encode("utf-16"),
    ("机密★1年\n" + PROSE).encode("utf-8"),
    # cut inside a multi-byte character at the 16 KiB the shortcut looks at
    ("机" * 6000).encode("utf-8"),
], ids=["utf-8", "utf-8-bom", "gb18030", "utf-16-bom", "marking-first", "cut-mid-character"])
def test_prose_is_plain_text_without_libmagic(data: bytes, monkeypatch) -> None:
    assert d.magic_type(data[:d.MAGIC_BYTES]).startswith(("text/", "application/octet-stream"))
    monkeypatch.setattr(d, "magic_type", lambda head: pytest.fail("libmagic asked about prose"))
    assert d.detect(data) == "text/plain"


@pytest.mark.parametrize("data,want", [
    (("一段说明文字\n" * 200 + "<html><body><p>机密★1年</p></body></html>").encode(), "text/html"),
    (b"<?xml version='1.0'?><root><a>x</a></root>", "text/xml"),
    (b"name,level\n" + "张三,机密\n".encode() * 50, "text/csv"),
    (b"#!/bin/sh\necho hi\n", "text/x-shellscript"),
    (b"From: a@example.com\nTo: b@example.com\nSubject: x\nMIME-Version: 1.0\n"
     b"Content-Type: text/plain\n\nbody\n", "message/rfc822"),
    (b'{"level": "secret"}\n', "application/json"),
], ids=["html-after-prose", "xml", "csv", "script", "mail", "json"])
def test_what_the_shortcut_cannot_be_sure_of_goes_to_libmagic(data: bytes, want: str) -> None:
    assert not d.plain_text(data[:d.MAGIC_BYTES])
    assert d.detect(data) == want


@pytest.mark.parametrize("data,want", [
    (docs.pdf([["正文"]]), "application/pdf"),
    (docs.docx(["正文"]), d.DOCX),
    (docs.tar_gz({"a.txt": b"x"}), "application/gzip"),
    (docs.zip_of({"a.txt": b"x"}), d.ZIP),
], ids=["pdf", "docx", "gzip", "zip"])
def test_signatures_agree_with_libmagic(data: bytes, want: str, monkeypatch) -> None:
    refined = d.refine_zip(zipfile.ZipFile(io.BytesIO(data))) if data[:2] == b"PK" \
        else d.magic_type(data[:d.MAGIC_BYTES])
    assert refined == want
    monkeypatch.setattr(d, "magic_type", lambda head: pytest.fail("libmagic asked about a known signature"))
    assert d.detect(data) == want


def test_damaged_zip_falls_back_to_libmagic() -> None:
    assert d.detect(b"PK\x03\x04" + b"\x00" * 100) in ("application/zip", "application/octet-stream")
