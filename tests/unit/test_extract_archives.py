"""Archives: members of any supported type, nested, within the limits; hostile archives."""
from __future__ import annotations

import bz2
import io
import lzma
import tarfile
from pathlib import Path

import pytest

from baomi.agent.scan.extract import Extraction, extract
from baomi.agent.scan.limits import Limits
from tests.support import docs

pytestmark = pytest.mark.timeout(60)

MARK = "机密★5年"
LIMITS = Limits(max_file_bytes=50 << 20, max_archive_bytes=200 << 20, max_ratio=200.0,
                max_depth=5, max_members=1000)


def run(tmp_path: Path, name: str, data: bytes, limits: Limits = LIMITS) -> Extraction:
    path = tmp_path / name
    path.write_bytes(data)
    return extract(path, limits)


def found(ex: Extraction, text: str) -> list[dict]:
    return [c.location for c in ex.chunks if c.text == text]


def test_zip_member_docx(tmp_path):
    ex = run(tmp_path, "a.zip", docs.zip_of({"报告/预算.docx": docs.docx([MARK]), "readme.txt": "公开".encode()}))
    assert ex.type == "application/zip" and ex.inspectable
    assert found(ex, MARK) == [{"paragraph": 1, "member": "报告/预算.docx"}]
    assert [c.zone for c in ex.chunks if c.text == MARK] == ["first_page_top"]


def test_zip_gbk_member_names(tmp_path):
    ex = run(tmp_path, "a.zip", docs.zip_of({"机要/通知.txt": MARK.encode("gbk")}, gbk_names=True))
    assert found(ex, MARK) == [{"line": 1, "member": "机要/通知.txt"}]


def test_nested_archive_member_path(tmp_path):
    inner = docs.zip_of({"inner.docx": docs.docx([MARK])})
    outer = docs.zip_of({"outer.zip": inner})
    ex = run(tmp_path, "a.zip", outer)
    assert found(ex, MARK) == [{"paragraph": 1, "member": "outer.zip/inner.docx"}]


def test_tar_gz_and_gzip(tmp_path):
    ex = run(tmp_path, "a.tgz", docs.tar_gz({"dir/a.txt": MARK.encode()}))
    assert found(ex, MARK) == [{"line": 1, "member": "dir/a.txt"}]
    ex = run(tmp_path, "b.gz", docs.gz(docs.pdf([[MARK]])))
    assert ex.inspectable and any(c.text == MARK for c in ex.chunks)


@pytest.mark.parametrize("comp", ["bz2", "xz"])
def test_tar_bz2_xz(tmp_path, comp):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{comp}") as t:
        data = docs.xlsx({"S": [[MARK]]})
        info = tarfile.TarInfo("x/表.xlsx")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    ex = run(tmp_path, f"a.tar.{comp}", buf.getvalue())
    assert ex.inspectable, ex.detail
    assert found(ex, MARK) == [{"sheet": "S", "cell": "A1", "member": "x/表.xlsx"}]


def test_bare_bz2_and_xz(tmp_path):
    for name, data in (("a.bz2", bz2.compress(MARK.encode())), ("a.xz", lzma.compress(MARK.encode()))):
        ex = run(tmp_path, name, data)
        assert ex.inspectable and [c.text for c in ex.chunks] == [MARK], name


def test_7z(tmp_path):
    ex = run(tmp_path, "a.7z", docs.sevenzip({"a.ofd": docs.ofd([[MARK]])}))
    assert ex.type == "application/x-7z-compressed" and ex.inspectable
    assert found(ex, MARK) == [{"page": 1, "line": 1, "member": "a.ofd"}]


def test_encrypted_7z(tmp_path):
    ex = run(tmp_path, "e.7z", docs.sevenzip({"a.txt": MARK.encode()}, password="pw"))
    assert not ex.inspectable and ex.reason == "encrypted"


def test_encrypted_zip(tmp_path):
    data = docs.encrypted_zip({"a.txt": MARK.encode()})
    if data is None:
        pytest.skip("7z (p7zip-full) not installed")
    ex = run(tmp_path, "e.zip", data)
    assert not ex.inspectable and ex.reason == "encrypted"


def test_partial_archive_keeps_chunks(tmp_path):
    # one readable member, one encrypted: the readable text is kept and the archive is not inspectable
    enc = docs.sevenzip({"b.txt": b"x"}, password="pw")
    ex = run(tmp_path, "a.zip", docs.zip_of({"a.txt": MARK.encode(), "b.7z": enc}))
    assert not ex.inspectable and ex.reason == "encrypted"
    assert found(ex, MARK) == [{"line": 1, "member": "a.txt"}]


def test_zip_bomb_is_limit_exceeded(tmp_path):
    ex = run(tmp_path, "bomb.zip", docs.zip_bomb(levels=2, width=4, size=5 << 20))
    assert not ex.inspectable and ex.reason == "limit_exceeded"
    assert ex.detail


def test_too_many_members(tmp_path):
    few = Limits(max_file_bytes=50 << 20, max_archive_bytes=200 << 20, max_ratio=200.0, max_depth=5, max_members=3)
    ex = run(tmp_path, "m.zip", docs.zip_of({f"{i}.txt": f"第{i}".encode() for i in range(10)}), few)
    assert not ex.inspectable and ex.reason == "limit_exceeded"
    assert 1 <= len(ex.chunks) <= 3


def test_depth_limit(tmp_path):
    shallow = Limits(max_file_bytes=50 << 20, max_archive_bytes=200 << 20, max_ratio=200.0, max_depth=1, max_members=100)
    data = docs.zip_of({"l1.zip": docs.zip_of({"l2.zip": docs.zip_of({"a.txt": MARK.encode()})})})
    ex = run(tmp_path, "d.zip", data, shallow)
    assert not ex.inspectable and ex.reason == "limit_exceeded"
    assert found(ex, MARK) == []


def test_total_uncompressed_limit(tmp_path):
    small = Limits(max_file_bytes=50 << 20, max_archive_bytes=10_000, max_ratio=1e9, max_depth=5, max_members=100)
    data = docs.zip_of({"a.txt": MARK.encode(), "b.txt": ("内容" * 20000).encode()})
    ex = run(tmp_path, "t.zip", data, small)
    assert not ex.inspectable and ex.reason == "limit_exceeded"
