"""Chinese text in the encodings `iconv` writes besides UTF-8 and GBK, and in the
traditional script. The 7-bit ones (ISO-2022-CN, ISO-2022-JP-2, HZ, UTF-7) read as
harmless ASCII, UTF-32 without a mark as an unknown binary, Big5 as GBK gibberish, and
機密★1年 is 机密★1年 in the other script: each left a marked text public (or only
audited), a dress-up as easy as `iconv -t UTF-7`."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from baomi.agent.scan.rules import RuleSet
from baomi.common.levels import Level

from .extracted import rules, verdict  # noqa: F401 (rules: a fixture)

MARKED = "机密★1年\n关于年度采购计划的通知\n各部门：请按附表执行，并于本月底前报送。\n"
TRADITIONAL = "機密★1年\n關於年度採購計劃的通知\n各單位：請按附表執行，並於本月底前報送。\n"


def _iconv(text: str, encoding: str) -> bytes:
    if not shutil.which("iconv"):
        pytest.skip("iconv (libc-bin) is needed")
    run = subprocess.run(["iconv", "-f", "UTF-8", "-t", encoding], input=text.encode(), capture_output=True)
    if run.returncode != 0:
        pytest.skip(f"this iconv cannot write {encoding}: {run.stderr.decode(errors='replace').strip()}")
    return run.stdout


@pytest.mark.parametrize("encoding", ["ISO-2022-CN", "ISO-2022-CN-EXT", "ISO-2022-JP-2", "UTF-7", "UTF-32LE",
                                      "UTF-32BE", "GB2312", "GB18030", "UTF-16LE"])
def test_marked_text_written_by_iconv_is_found(rules: RuleSet, encoding: str) -> None:
    ex, ev, level = verdict(rules, _iconv(MARKED, encoding))
    assert level == Level.SECRET and ex.inspectable, (encoding, ex.type, ex.reason)
    assert ev[0].zone == "first_page_top" and ev[0].location == {"line": 1}
    assert "关于年度采购计划的通知" in [c.text for c in ex.chunks]


def test_marked_text_in_hz_is_found(rules: RuleSet) -> None:
    """HZ (RFC 1843), of old Chinese mail and news; glibc's iconv does not write it."""
    ex, ev, level = verdict(rules, MARKED.encode("hz"))
    assert level == Level.SECRET and ev[0].location == {"line": 1}


@pytest.mark.parametrize("encoding", ["UTF-8", "CP950", "BIG5-HKSCS"])
def test_marked_text_in_the_traditional_script_is_found(rules: RuleSet, encoding: str) -> None:
    ex, ev, level = verdict(rules, _iconv(TRADITIONAL, encoding))
    assert level == Level.SECRET and ev[0].rule == "cn.national.star", (encoding, [c.text for c in ex.chunks][:2])


@pytest.mark.parametrize("text, level", [("絕密★啟用前\n", Level.TOP_SECRET), ("密級：機密\n", Level.SECRET),
                                         ("秘密★長期\n", Level.CONFIDENTIAL), ("祕密★6個月\n", Level.CONFIDENTIAL)])
def test_traditional_forms_of_the_marking_words(rules: RuleSet, text: str, level: Level) -> None:
    assert verdict(rules, text.encode())[2] == level


@pytest.mark.parametrize("text", [
    "C++ notes: call +86 10 1234 5678, a+b-c, x+=1\n",       # '+' runs that are no UTF-7 Chinese
    "shell: echo ~{HOME} and ~/bin\n",                      # '~{' that opens no HZ
    "報告：本系統不處理機密資料。\n",                          # prose about 機密, not a marking
])
def test_ascii_and_prose_that_only_look_like_another_encoding_stay_as_they_are(rules: RuleSet, text: str) -> None:
    ex, ev, level = verdict(rules, text.encode())
    assert level == Level.PUBLIC and not ev and ex.chunks[0].text == text.strip()


def test_gbk_text_is_not_taken_for_big5(rules: RuleSet) -> None:
    ex, ev, level = verdict(rules, MARKED.encode("gbk"))
    assert level == Level.SECRET and ex.chunks[1].text == "关于年度采购计划的通知"
