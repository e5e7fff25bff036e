"""Every extractor on mutated bytes: never an exception other than for the path
itself, never unbounded work; a damaged file is either read or reported with a
reason from the contract."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from baomi.agent.scan.extract import extract_bytes
from baomi.agent.scan.limits import Limits
from baomi.common.rulefile import ZONES
from tests.support import docs

pytestmark = pytest.mark.timeout(120)

LIMITS = Limits(max_file_bytes=4 << 20, max_archive_bytes=16 << 20, max_ratio=200.0, max_depth=3, max_members=200)
REASONS = {"encrypted", "corrupt", "too_large", "limit_exceeded", "unreadable", "unsupported"}
MARK = "机密★5年"

SEEDS = {
    "docx": docs.docx([MARK, "正文"], header="页眉", table=[["a", "b"]]),
    "xlsx": docs.xlsx({"S": [[MARK], ["1", "2"]]}),
    "xlsb": docs.xlsb({"S": [[MARK], ["1", "2"]]}, header=MARK, comment="批注"),
    "pptx": docs.pptx([[MARK]]),
    "xps": docs.xps([[MARK, "正文"]]),
    "pdf": docs.pdf([[MARK, "第二行"]], title="T"),
    "ofd": docs.ofd([[MARK]], custom={"密级": "机密"}),
    "rtf": docs.rtf([MARK]),
    "zip": docs.zip_of({"a/b.txt": MARK.encode("gbk")}, gbk_names=True),
    "tgz": docs.tar_gz({"a.txt": MARK.encode()}),
    "7z": docs.sevenzip({"a.txt": MARK.encode()}),
    "rar": docs.rar4({"资料/a.txt": MARK.encode(), "b.txt": "正文".encode()}),
    "txt": (MARK + "\n正文\n").encode("utf-16"),
    "doc": docs.doc([MARK, "正文"], header="页眉"),
    "xls": docs.xls({"S": [[MARK], ["1", "2"]]}),
    "ppt": docs.ppt([[MARK], ["第二页"]], footer=MARK, comment="批注"),
    "xls4": docs.biff_sheet([[MARK], ["1", "张三"]], header="&L机密"),
    "pdf-headerless": docs.pdf([[MARK, "第二行"]]).replace(b"%PDF-", b"%/XX-", 1),
}


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif data:
            data[pos:pos + 16] = bytes(min(16, len(data) - pos))
    return bytes(data)


def check(data: bytes, name: str) -> None:
    ex = extract_bytes(data, name, LIMITS, raw=("密",))   # what no reader understands is searched too
    assert isinstance(ex.type, str) and ex.type
    if not ex.inspectable:
        assert ex.reason in REASONS, ex.reason
    for c in ex.chunks:
        assert c.zone in ZONES
        assert isinstance(c.text, str) and isinstance(c.location, dict)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutations_never_crash(fmt):
    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(SEEDS[fmt]))
    def inner(data):
        check(data, f"x.{fmt}")
    inner()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(data):
    check(data, "random.bin")


def test_seeds_are_read():
    # the unmutated seeds are readable, so the mutations start from real documents
    for fmt, data in SEEDS.items():
        ex = extract_bytes(data, f"x.{fmt}", LIMITS)
        damaged = fmt == "pdf-headerless"   # damaged on purpose: corrupt, its text recovered
        assert ex.inspectable != damaged, (fmt, ex.reason, ex.detail)
        assert any(MARK in c.text for c in ex.chunks), fmt


_LINE = st.text(alphabet=st.sampled_from("机密秘绝内部资料关于年度预算通知各部门请妥善保管第一二三★，。 ABCxyz0123"),
                min_size=2, max_size=30).map(str.strip).filter(bool)


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030", "utf-16"])
@settings(max_examples=40, deadline=None, derandomize=True)
@given(lines=st.lists(_LINE, min_size=1, max_size=12))
def test_text_round_trips(encoding, lines):
    # Chinese text in each supported encoding comes back line by line, unchanged
    ex = extract_bytes("\n".join(lines).encode(encoding), "t.txt", LIMITS)
    assert ex.inspectable, ex.detail
    assert [c.text for b in ex.chunks for c in b.lines()] == lines
