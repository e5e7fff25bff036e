"""Every public document of ../shared/corpus through the real scanner, and
mutated documents of every format through the extractors: no crash, no hang,
an honest verdict."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baomi.agent.config import AgentConfig
from baomi.common.levels import Level
from baomi.agent.scan.engine import Scanner
from baomi.agent.scan.extract import extract_data
from baomi.agent.scan.limits import Limits
from baomi.agent.scan.verdict import Verdict
from tests.support import docs, scans

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
REASONS = {"encrypted", "corrupt", "too_large", "limit_exceeded", "timeout", "unsupported", "vanished", "unreadable"}


@pytest.mark.timeout(900)
@pytest.mark.skipif(not CORPUS.is_dir(), reason="public corpus (../shared/corpus) not present")
def test_whole_corpus_gets_a_verdict_per_file() -> None:
    cfg = AgentConfig()
    cfg.scan.rule_dirs = []
    cfg.scan.timeout_s = 60
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and not p.is_symlink())
    verdicts: list[Verdict] = []
    with Scanner(cfg, jobs=2) as s:
        verdicts = list(s.scan_paths([CORPUS]))
    by_path = {v.path: v for v in verdicts}
    assert len(by_path) >= len(files)
    for v in verdicts:
        assert v.inspectable or v.reason in REASONS, v
        assert v.inspectable or v.detail, v
        if v.inspectable:
            assert v.sha256 and len(v.sha256) == 64
    readable = [v for v in verdicts if v.inspectable]
    assert len(readable) > 0.6 * len(verdicts), "most public documents are readable"
    # the corpus is ordinary software test data: nothing in it is classified Chinese material
    marked = [v for v in verdicts if v.level >= Level.SECRET]
    assert len(marked) <= 2, [(v.path, [e.rule for e in v.evidence]) for v in marked]


SAMPLES = {
    "docx": docs.docx(["机密★1年", "正文"], header="页眉", custom={"密级": "机密"}),
    "xlsx": docs.xlsx({"S": [["秘密★1年"], ["a", "b"]]}),
    "pptx": docs.pptx([["绝密★长期", "x"]]),
    "pdf": docs.pdf([["机密★1年", "第一页"], ["第二页"]]),
    "ofd": docs.ofd([["秘密★3年", "正文"]]),
    "rtf": docs.rtf(["机密★1年", "正文"]),
    "zip": docs.zip_of({"a.txt": "机密★1年".encode(), "b/c.docx": docs.docx(["x"])}),
    "tgz": docs.tar_gz({"a.txt": "机密★1年".encode()}),
    "7z": docs.sevenzip({"a.txt": "机密★1年".encode()}),
    "gbk": "机密★1年\n正文\n".encode("gbk"),
    "odt": docs.odf("text", docs.odt_body(["机密★1年", "正文"], note="注"), header="页眉"),
    "fods": docs.odf("spreadsheet", docs.ods_body({"S": [["秘密★1年"], ["a", "b"]]}), flat=True),
    "html": "<html><head><meta charset=gbk><title>t</title></head><body><p>机密★1年</p></body></html>".encode("gbk"),
    "eml": docs.eml("机密★1年", "正文", charset="gbk", attachments={"a.txt": "绝密★长期".encode()}),
    "png": scans.encode(scans.photo(160, 90), "PNG"),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", sorted(SAMPLES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_documents_never_crash(kind: str, data: st.DataObject) -> None:
    raw = bytearray(SAMPLES[kind])
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[pos:pos + data.draw(st.integers(1, 64))]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=32))
    ex = extract_data(bytes(raw), Limits(max_archive_bytes=64 * 1024 * 1024))
    assert ex.inspectable or ex.reason in REASONS
    assert isinstance(ex.chunks, list)
