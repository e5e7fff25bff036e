"""Marking recognition: true positives in every national, enterprise and English
form, and the ordinary prose that must stay unflagged."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baomi.common.levels import Level
from baomi.agent.scan.verdict import TextChunk
from baomi.agent.scan.rules import RuleError, RuleSet

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load([])


def levels(rules: RuleSet, zone: str, text: str) -> list[tuple[str, str]]:
    return [(e.rule, e.level.id) for e in rules.evaluate([TextChunk(zone, text, {"line": 1})])]


@pytest.mark.parametrize("text,level", [
    ("机密★1年", "secret"), ("秘密★6个月", "confidential"), ("绝密★长期", "top_secret"),
    ("绝密★启用前", "top_secret"), ("秘密★会议召开前", "confidential"), ("机密★2027年6月30日", "secret"),
    ("机密☆5年", "secret"), ("机密＊5年", "secret"), ("机密*5年", "secret"), ("秘密★十年", "confidential"),
    ("秘密★三个月", "confidential"), ("绝密★", "top_secret"), ("机　密★1年", "secret"), ("机 密 ★ 1 年", "secret"),
    ("【机密★1年】", "secret"), ("  机密★20年  ", "secret"), ("（绝密★长期）", "top_secret"),
    ("密级：机密", "secret"), ("密级:秘密★1年", "confidential"), ("密级 绝密", "top_secret"),
    ("核心商密★5年", "secret"), ("普通商密★2年", "confidential"),
    ("SECRET//NOFORN", "secret"), ("TOP SECRET//SCI", "top_secret"), ("CONFIDENTIAL", "confidential"),
    ("CLASSIFICATION: SECRET", "secret"),
    ("(TS) The operation begins at dawn.", "top_secret"), ("(S//NF) Troop movements follow.", "secret"),
    ("(C//REL TO USA) Budget lines.", "confidential"),
])
def test_markings_in_the_body_or_top(rules: RuleSet, text: str, level: str) -> None:
    for zone in ("first_page_top", "body", "header"):
        found = levels(rules, zone, text)
        assert found and max(Level.parse(l) for _, l in found).id == level, (zone, text, found)


@pytest.mark.parametrize("text,level", [
    ("机密", "secret"), ("绝 密", "top_secret"), ("【秘密】", "confidential"), ("核心商密", "secret"),
    ("商业秘密", "confidential"), ("内部", "internal"), ("内部资料 注意保存", "internal"),
    ("内部资料，注意保存", "internal"), ("工作秘密", "internal"), ("CUI", "internal"), ("CUI//SP-PRVCY", "internal"),
])
def test_bare_markings_count_at_the_top_and_in_headers_only(rules: RuleSet, text: str, level: str) -> None:
    for zone in ("first_page_top", "header", "footer"):
        assert [l for _, l in levels(rules, zone, text)] == [level], (zone, text)
    assert levels(rules, "body", text) == [], f"a lone {text!r} in the body is not a marking"


PROSE = [
    "根据《中华人民共和国保守国家秘密法》，国家秘密的密级分为绝密、机密、秘密三级。",
    "本协议所称商业秘密，是指不为公众所知悉、能为权利人带来经济利益的技术信息和经营信息。",
    "商业秘密保护协议",
    "第三条 公司密级分为三类：绝密、机密、秘密。",
    "绝密、机密、秘密",
    "培训课件：如何区分绝密、机密和秘密文件",
    "秘密花园",
    "她把这个秘密藏在心里很多年。",
    "机密文件的管理应当符合有关规定",
    "记者从保密局获悉，新修订的保守国家秘密法将于五月一日起施行。",
    "The secret to good bread is patience.",
    "Secret",
    "secret",
    "This document is not confidential.",
    "(C) Copyright 2024 Example Corp.",
    "(C) The contractor shall deliver the goods.",
    "(S) Subject to the terms below.",
    "TOP SECRET clearance holders must report foreign travel, said the memo.",
    "内部控制制度",
    "内部审计报告的编制要求",
    "密级",
    "SECRETARY",
    "CUISINE",
]


@pytest.mark.parametrize("text", PROSE)
@pytest.mark.parametrize("zone", ["first_page_top", "body", "header"])
def test_ordinary_prose_is_not_a_marking(rules: RuleSet, text: str, zone: str) -> None:
    assert levels(rules, zone, text) == []


@pytest.mark.parametrize("text,level", [
    ("# 绝密 ⋆ 启用前", "top_secret"), ("## 机密★1年 ##", "secret"), ("**机密★1年**", "secret"),
    ("*秘密★6个月*", "confidential"), ("__绝密★长期__", "top_secret"), ("> 秘密★6个月", "confidential"),
    ("> **机密★1年**", "secret"), ("- 机密★1年", "secret"), ("• 绝密★启用前", "top_secret"),
    ("| 机密★1年 |", "secret"), ("<p>机密★1年</p>", "secret"), ('<p class="MsoNormal"><b>机密</b>★1年</p>', "secret"),
    ("<div><span>秘密&#9733;6个月</span></div>", "confidential"), ("# SECRET//NOFORN", "secret"),
    # a sheet's banner saved as CSV: its empty cells and Excel's quotes
    ("机密★1年,,,", "secret"), ('"秘密★6个月",,', "confidential"), (",,绝密★启用前", "top_secret"), ("机密★1年;;", "secret"),
    # a list bullet in a symbol font, as a PDF's or RTF's text gives it (OpenSymbol, Symbol, Wingdings)
    ("\uf095 机密★1 年", "secret"), ("\uf0b7\t秘密★6个月", "confidential"), ("\uf0d8绝密★启用前", "top_secret"),
])
def test_decorated_marking_lines(rules: RuleSet, text: str, level: str) -> None:
    """Markdown and HTML around a marking line, as OCR-to-markdown tools and web pages write it."""
    for zone in ("first_page_top", "body"):
        found = levels(rules, zone, text)
        assert found and max(Level.parse(l) for _, l in found).id == level, (zone, text, found)


@pytest.mark.parametrize("text,level", [
    ("HIGHEST POSSIBLE CLASSIFICATION IS TOP SECRET // SI / TK // REL TO USA", "top_secret"),
    ("CLASSIFICATION: SECRET", "secret"),
    ("DERIVED FROM: NSA/CSSM 1-52 CLASSIFICATION: TOP SECRET", "top_secret"),
    ("1 TOP SECRET//COMINT//NOFORN", "top_secret"),
    ("PAGE 2 OF 7 SECRET//REL TO USA, FVEY", "secret"),
])
def test_banner_sharing_its_line(rules: RuleSet, text: str, level: str) -> None:
    for zone in ("first_page_top", "body", "footer"):
        found = levels(rules, zone, text)
        assert found and max(Level.parse(l) for _, l in found).id == level, (zone, text, found)


@pytest.mark.parametrize("text,level", [
    ("机密\uf0ab1年", "secret"), ("绝密\uf0ab启用前", "top_secret"), ("秘密\uf02a6个月", "confidential"),
    ("机密✶1年", "secret"), ("核心商密\uf0ab5年", "secret"),
])
def test_star_typed_in_a_symbol_font(rules: RuleSet, text: str, level: str) -> None:
    """Regression: Wingdings/Symbol stars arrive as private-use code points and were never a ★."""
    assert [l for _, l in levels(rules, "first_page_top", text)] == [level]


@pytest.mark.parametrize("text,level", [("核心商密★5 年", "secret"), ("普通商密★6 个月", "confidential")])
def test_enterprise_marking_with_a_space_before_the_unit(rules: RuleSet, text: str, level: str) -> None:
    """Regression: PDF text layers write 5 年; the national rule tolerated it, the enterprise one did not."""
    assert [l for _, l in levels(rules, "body", text)] == [level]


def test_marking_in_one_region_of_a_header_line(rules: RuleSet) -> None:
    """Word headers set the company and the marking apart with a tab; Calc prints regions with wide gaps."""
    assert levels(rules, "header", "XX集团有限公司\t普通商密★2年") == [("cn.enterprise.star", "confidential")]
    assert levels(rules, "footer", "第 1 页      机密") == [("cn.national.bare", "secret")]
    assert levels(rules, "body", "名称\t机密") == [], "only header and footer lines are split into regions"


@pytest.mark.parametrize("text,level", [("机密★1年 装备配置清单", "secret"), ("绝密★启用前\t2026年全国统一考试", "top_secret"),
                                       ("秘密★6个月　年度经营计划", "confidential"), ("核心商密★5年 KPI", "secret"),
                                       ("机密★1 年 编号：001", "secret")])   # a PDF's `1 年`, then a tab shown as a gap
def test_marking_leading_a_title_line_at_the_top(rules: RuleSet, text: str, level: str) -> None:
    """Regression: a marking sharing the first line with the title was missed."""
    assert [l for _, l in levels(rules, "first_page_top", text)] == [level]
    assert levels(rules, "body", text) == [], "in the body a line must be the marking alone"


@pytest.mark.parametrize("text", ["机密★1年 表示保密期限为一年", "机密★1 年 表示保密期限为一年", "秘密★6个月 是指保密期限六个月", "绝密★ 最重要的国家秘密",
                                  "机密 文件管理办法", "密级：机密 以上文件", "SECRET//NOFORN is a banner"])
def test_explained_or_bare_lead_is_not_a_marking(rules: RuleSet, text: str) -> None:
    assert levels(rules, "first_page_top", text) == []


DECORATED_PROSE = [
    "文件应标注为‘秘密★1年’后方可印发。",
    "• 机密★：重要的国家秘密",
    "\uf0b7 机密★：重要的国家秘密",
    "> 国家秘密的密级分为绝密、机密、秘密三级",
    "# 秘密花园",
    "**机密文件的管理**",
    "<p>机密文件的管理应当符合有关规定</p>",
    "| 名称 | 机密 |",
    "序号,名称,机密★1年",
    '"标注为机密★1年",,',
    "机密★1年,装备配置清单,3",
    "The top secret recipe",
    "TOP SECRET RECIPES",
    "THE SECRET GARDEN",
    "CONFIDENTIAL SETTLEMENT AGREEMENT",
    "Mark the banner as SECRET//NOFORN.",
    "The classification is SECRET for this file.",
    "UNCLASSIFIED//FOR OFFICIAL USE ONLY",
    "CLASSIFICATION: UNCLASSIFIED",
    "DECLASSIFICATION IS SECRET WORK",
    "SECRETARY//GENERAL",
]


@pytest.mark.parametrize("text", DECORATED_PROSE)
@pytest.mark.parametrize("zone", ["first_page_top", "body", "header"])
def test_decorated_prose_is_not_a_marking(rules: RuleSet, text: str, zone: str) -> None:
    assert levels(rules, zone, text) == []


def _seed_files() -> list[Path]:
    return sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []


@pytest.mark.skipif(not _seed_files(), reason="regulation seed texts (../shared/seeds) not present")
@pytest.mark.parametrize("seed", _seed_files(), ids=lambda p: p.name)
def test_regulation_texts_carry_no_marking(rules: RuleSet, seed: Path) -> None:
    """The regulations talk about 绝密/机密/秘密 all the time; none of it is a marking."""
    lines = [l for l in seed.read_text(encoding="utf-8", errors="replace").splitlines() if l.strip()]
    chunks = [TextChunk("first_page_top" if i < 8 else "body", l, {"line": i + 1}) for i, l in enumerate(lines)]
    assert rules.evaluate(chunks) == []


def test_register_column_of_levels_is_not_a_marking(rules: RuleSet) -> None:
    """A register's level column holds bare level words in body cells."""
    cells = [TextChunk("body", t, {"sheet": "登记簿", "cell": f"C{i}"}) for i, t in
             enumerate(["密级", "机密", "秘密", "绝密", "机密"], 1)]
    assert rules.evaluate(cells) == []


def test_labels_and_body_marking_wins(rules: RuleSet) -> None:
    label = TextChunk("metadata", "Highly Confidential", {"key": "MSIP_Label_6f3b1a2c-1234-4abc-9def-0123456789ab_Name"})
    ev = rules.evaluate([label])
    assert [(e.rule, e.level) for e in ev] == [("label.msip", Level.SECRET)]
    assert rules.level(ev) == Level.SECRET
    body = TextChunk("first_page_top", "秘密★1年", {"line": 1})
    ev = rules.evaluate([label, body])
    assert rules.level(ev) == Level.CONFIDENTIAL, "a body marking wins over a metadata label"
    unknown = TextChunk("metadata", "Team Only", {"key": "MSIP_Label_6f3b1a2c-1234-4abc-9def-0123456789ab_Name"})
    assert rules.evaluate([unknown]) == []
    assert rules.evaluate([TextChunk("metadata", "机密", {"key": "密级"})])[0].level == Level.SECRET


def test_evidence_carries_a_hash_never_the_text(rules: RuleSet) -> None:
    ev = rules.evaluate([TextChunk("body", "机密★1年", {"page": 2, "line": 7, "member": "a/b.docx"})])
    assert len(ev) == 1
    e = ev[0].to_json()
    assert e["location"] == {"page": 2, "line": 7, "member": "a/b.docx"} and e["zone"] == "body"
    assert len(e["hash"]) == 64 and "机密" not in str(e)


def test_site_rules_add_keywords_and_override_or_disable(tmp_path: Path) -> None:
    d = tmp_path / "rules.d"
    d.mkdir()
    (d / "site.toml").write_text('''
[[rule]]
id = "site.projects"
kind = "keywords"
level = "secret"
words = ["天穹计划", "PROJECT NIGHTJAR"]

[[rule]]
id = "cn.enterprise.bare"
enabled = false

[[rule]]
id = "cn.internal"
kind = "marking"
zones = ["first_page_top"]
pattern = "(?P<level>内部)"
levels = { "内部" = "confidential" }
''', encoding="utf-8")
    rs = RuleSet.load([d])
    assert levels(rs, "body", "关于天穹计划第二阶段的安排") == [("site.projects", "secret")]
    assert levels(rs, "body", "status of project nightjar") == []  # keywords are case-sensitive as written
    assert levels(rs, "first_page_top", "商业秘密") == []
    assert levels(rs, "first_page_top", "内部") == [("cn.internal", "confidential")]


@pytest.mark.parametrize("body,needle", [
    ('[[rule]]\nid = "x"\nkind = "marking"\npattern = "(?P<level>机密"\nlevel = "secret"\n', "rule 'x' key 'pattern'"),
    ('[[rule]]\nid = "x"\nkind = "nonsense"\nlevel = "secret"\n', "key 'kind'"),
    ('[[rule]]\nid = "x"\nkind = "marking"\npattern = "a"\nlevel = "ultra"\n', "unknown level 'ultra'"),
    ('[[rule]]\nid = "x"\nkind = "marking"\npattern = "a"\nlevel = "secret"\nzones = ["middle"]\n', "key 'zones'"),
    ('[[rule]]\nid = "x"\nkind = "marking"\npattern = "a"\n', "needs `level`"),
    ('[[rule]]\nid = "x"\nkind = "marking"\npattern = "a"\nlevel = "secret"\ncolour = 1\n', "key 'colour'"),
    ('[[rule]]\nkind = "marking"\n', "key 'id'"),
    ('[[rule]\nid = "x"\n', "site.toml:1"),
    ('[fingerprint]\nthreshold = 2\n', "fingerprint.threshold"),
    ('[[rule]]\nid = "x"\nkind = "marking"\npattern = "a"\nlevels = { "a" = "secret" }\n', "(?P<level>"),
])
def test_bad_rule_files_are_named_precisely(tmp_path: Path, body: str, needle: str) -> None:
    d = tmp_path / "rules.d"
    d.mkdir()
    (d / "site.toml").write_text(body, encoding="utf-8")
    with pytest.raises(RuleError) as err:
        RuleSet.load([d])
    assert "site.toml" in str(err.value) and needle in str(err.value)


def test_shipped_rules_load_and_a_missing_folder_is_skipped(tmp_path: Path) -> None:
    rs = RuleSet.load([tmp_path / "absent"])
    ids = {r.id for r in rs.rules}
    assert {"cn.national.star", "cn.national.bare", "cn.national.keyvalue", "en.banner", "label.msip"} <= ids


# ---- long texts: one multi-line chunk, read line by line ---------------------------

def _with_keywords() -> RuleSet:
    base = RuleSet.load([])
    from baomi.agent.scan.rules import parse_file
    extra, _ = parse_file("site.toml", '[[rule]]\nid = "site.projects"\nkind = "keywords"\nlevel = "secret"\n'
                                       'zones = ["body"]\nwords = ["天穹计划"]\n')
    return RuleSet([*base.rules, *extra])


KEYWORDS = _with_keywords()

_LINE_PARTS = st.sampled_from(["机密★5年", "密级：秘密", "(TS) The plan.", "（S//NF) 部署", "关于年度预算的通知",
                               "保密工作会议纪要", "天穹计划", "  ", "", "SECRET//NOFORN", "各部门：", "机 密"])


@settings(max_examples=80, deadline=None, derandomize=True)
@given(lines=st.lists(_LINE_PARTS, min_size=1, max_size=40), first=st.integers(1, 50))
def test_a_block_of_lines_gives_what_its_lines_give(lines: list[str], first: int) -> None:
    # the fast path (a C-speed pass over the block) must find exactly what line-by-line evaluation finds
    for ruleset in (RuleSet.load([]), KEYWORDS):
        block = TextChunk("body", "\n".join(lines), {"line": first, "member": "a/b.txt"}, multiline=True)
        single = [c for c in block.lines()]
        got = sorted((e.rule, e.level.id, e.location["line"], e.hash) for e in ruleset.evaluate([block]))
        want = sorted((e.rule, e.level.id, e.location["line"], e.hash) for e in ruleset.evaluate(single))
        assert got == want


def test_a_marking_deep_in_a_long_text_file_names_its_line(tmp_path: Path) -> None:
    from baomi.agent.scan.extract import extract_bytes
    from baomi.agent.scan.limits import Limits
    lines = ["各部门：本单位认真做好相关工作，确保各项任务按期完成。"] * 5000
    lines[2499] = "密级：秘密"
    lines[3999] = "（S//NF) 部署"
    ex = extract_bytes("\r\n".join(lines).encode("gb18030"), "long.txt", Limits())
    assert len(ex.chunks) <= 9  # eight top lines and one block, not 5,000 objects
    found = RuleSet.load([]).evaluate(ex.chunks)
    assert sorted((e.rule, e.zone, e.location["line"]) for e in found) == [
        ("cn.national.keyvalue", "body", 2500), ("en.portion", "body", 4000)]
