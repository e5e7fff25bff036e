"""Text normalisation before rules run: one spelling for what Chinese office
documents write many ways (full-width ＊：（）, ideographic spaces, NBSP)."""
from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"[\s\u3000\u00a0\u2000-\u200b\ufeff]+")
# NFKC leaves these alone, but documents use them for the same marks
_EXTRA = str.maketrans({"﹡": "*", "✱": "*", "✲": "*", "⋆": "*", "∗": "*", "【": "[", "】": "]", "〔": "[", "〕": "]",
                        "〖": "[", "〗": "]", "《": "<", "》": ">", "∶": ":",
                        # a star typed in a symbol font arrives as a private-use code point:
                        # Wingdings 0xAB (★, what 公文 templates insert) and Symbol 0x2A (∗)
                        "\uf0ab": "★", "\uf02a": "*",
                        # the traditional forms of the marking words' characters (機密★1年, 絕密★啟用前,
                        # 密級：秘密, 內部, 長期, 6個月; 祕 is a variant of 秘): the same marking in either script
                        "機": "机", "絕": "绝", "啟": "启", "級": "级", "內": "内", "長": "长", "個": "个", "祕": "秘",
                        **{ch: "★" for ch in "⭐✦✪✫✬✭✮✯✰✴✵✶✷✸✹"}})


def normalize(text: str) -> str:
    """NFKC (full-width → half-width, ideographic space → space), unify stars and
    brackets, collapse runs of white space to one space, strip the ends."""
    text = unicodedata.normalize("NFKC", text).translate(_EXTRA)
    return _SPACES.sub(" ", text).strip()


_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}]) (?=[{_CJK}])")


def squeeze_cjk(text: str) -> str:
    """Drop single spaces between two CJK characters ("机 密" → "机密"), which
    typesetting and PDF text layers insert; spaces next to Latin text stay."""
    return _CJK_GAP.sub("", text)


_FP_DROP = re.compile(rf"[^0-9a-z{_CJK}]+")


def for_fingerprint(text: str) -> str:
    """Letters, digits and CJK only, lower case: edits of layout and punctuation
    must not change a document's fingerprint."""
    return _FP_DROP.sub("", unicodedata.normalize("NFKC", text).lower())


# markup that documents put around a marking line: a markdown heading, quote,
# list bullet or table pipe in front, closing #s or a pipe behind, emphasis
# around the whole line, HTML tags (only tags: <机密★1年> is a bracket), and the
# empty cells and quotes of a CSV row (a sheet's banner saved as CSV: `"机密★1年",,,`)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
# a bullet typed in a symbol font (Symbol's •, Wingdings' ▪ ➢ ✓, OpenSymbol's) is a
# private-use code point in a PDF's or RTF's text: a glyph with no meaning for the rules
_LEAD = re.compile(r"^(?:#{1,6}\s+|>\s*|[-+*•·●▪◆■□○]\s+|[\ue000-\uf8ff]\s*|\|\s*|[,;]\s*)+")
_TRAIL = re.compile(r"(?:\s+#+|\s*\||\s*[,;])+$")
_EMPH = re.compile(r"^(\*{1,3}|_{1,3}|~~|\")(?=\S)(.+?)(?<=\S)\1$")


def strip_markup(text: str) -> str:
    """The line without the markup around it: `# 绝密*启用前`, `**机密★1年**`,
    `> 秘密★6个月`, `| 机密 |`, `<p><b>机密★1年</b></p>`, `"机密★1年",,,` → the marking alone.
    Takes normalised text (stars already `*`); markup inside the line stays."""
    if "<" in text:
        text = _TAG.sub("", text)
    if "&" in text:
        import html
        text = html.unescape(text)
    for _ in range(4):  # nested: "> **机密★1年**"
        before = text
        text = _TRAIL.sub("", _LEAD.sub("", text)).strip()
        m = _EMPH.match(text)
        if m:
            text = m.group(2).strip()
        if text == before:
            break
    return text


_REGION_GAP = re.compile(r"\t|[ \u3000\u00a0]{3,}|\u3000{2,}")


def regions(text: str) -> list[str]:
    """The parts of a header or footer line that its layout sets apart (tabs,
    wide gaps): `XX集团有限公司<TAB>普通商密★2年` → both parts; [] if one part."""
    parts = [p for p in (s.strip() for s in _REGION_GAP.split(text)) if p]
    return parts if len(parts) > 1 else []


_LEAD_GAP = re.compile(r"[\t \u3000\u00a0]+")
_UNIT_GAP = re.compile(r"(?<=\d)[ \u00a0]+(?=年|个月|月)")   # `★1 年`, as a PDF's text layer spaces it
_EXPLAINS = re.compile(r"表示|是指|指|即|意为|意味|代表|为|的|是")


def leading_part(text: str) -> str | None:
    """The first part of a line that goes on after a gap — `机密★1年 装备配置清单`
    → `机密★1年`, where a document puts its marking and title on one line; None
    when the line is one part, or when the rest explains the first (`机密★1年
    表示保密期限为一年`, a training text)."""
    t = _UNIT_GAP.sub("", text.strip())
    m = _LEAD_GAP.search(t)
    if m is None:
        return None
    rest = t[m.end():]
    return None if not rest or _EXPLAINS.match(rest) else t[:m.start()]
