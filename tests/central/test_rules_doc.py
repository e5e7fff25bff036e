"""The rules document's pure parts (building, verifying, the audit changes, rule errors
naming the line) and the agent's side in-process: a rules document is judged like the
policy (forged, older: refused with details.document = "rules"), kept in state_dir and
verified again at start, and scanners built from the configuration pick it up: the
kept file's rules and fingerprints join the local ones, and a scanner that holds older
rules reloads them. The collector is an httpx MockTransport here; the real one is in
test_rules.py and test_agent_rules.py."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from baomi.agent import config as agent_config
from baomi.agent.central import RULES_STORE, CentralRules
from baomi.agent.context import open_context
from baomi.agent.scan.rules import RuleSet, central_rules, rules_stamp
from baomi.agent.scan.verdict import TextChunk
from baomi.common import central, rulesdoc
from baomi.common.levels import Level
from baomi.common.rulefile import RuleError, validate

KEY = Ed25519PrivateKey.generate()
SITE = '''[[rule]]
id = "site.keywords"
kind = "keywords"
level = "secret"
words = ["天穹计划"]
'''
SHA = hashlib.sha256(b"registered").hexdigest()


def envelope(version: int, rules: str = SITE, fps: list | None = None, key=KEY) -> dict:
    return central.sign(rulesdoc.document(version, rules, fps or [], "2026-12-01T10:00:00Z"), key)


# -- pure ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, line, words", [
    ("[[rule]]\nid = \"a\"\nkind = \"keywords\"\nlevel = \"ultra\"\nwords = [\"x\"]\n", 4, "unknown level 'ultra'"),
    (SITE + "\n[[rule]]\nid = \"b\"\nkind = \"marking\"\nlevel = \"secret\"\npattern = \"(\"\n", 11,
     "bad regular expression"),
    (SITE + "\n[[rule]]\nid = \"c\"\nkind = \"keywords\"\nlevel = \"secret\"\nwords = [\"\"]\n", 11,
     "non-empty strings"),
    ("[[rule]]\nid = \"d\"\nkind = \"label\"\nkey = \"LabelInfo\"\n[rule.levels]\n\"x\" = \"nope\"\n", 6,
     "unknown level 'nope'"),
    ("[[rule]\n", 1, "TOML syntax error"),
    ("[fingerprint]\nthreshold = 2\n", 1, "(0, 1]"),
    ("[[rule]]\nid = \"e\"\nkind = \"keywords\"\nlevel = \"secret\"\nwords = [\"x\"]\nwordz = 1\n", 6, "unknown key"),
])
def test_a_bad_rule_is_refused_with_its_line_and_reason(text: str, line: int, words: str) -> None:
    with pytest.raises(RuleError) as exc:
        validate(text, "site.toml")
    assert exc.value.line == line and words in str(exc.value)
    assert str(exc.value).startswith(f"site.toml:{line}:")


def test_validate_counts_and_the_shipped_files_are_valid() -> None:
    assert validate(SITE) == {"marking": 0, "label": 0, "keywords": 1, "disabled": 0}
    from importlib import resources
    for res in resources.files("baomi.rules").iterdir():
        if res.name.endswith(".toml"):
            validate(res.read_text(encoding="utf-8"), res.name)


def test_document_is_built_verified_and_forgeries_named() -> None:
    fp = {"name": "合同", "level": "secret", "sha256": SHA}
    env = envelope(3, fps=[fp])
    doc = rulesdoc.verify(env, KEY.public_key())
    assert doc["version"] == 3 and doc["fingerprints"] == [fp] and doc["type"] == "rules"
    with pytest.raises(RuleError):
        rulesdoc.document(1, "[[rule]\n", [], "t")
    for bad in ({**fp, "level": "public"}, {**fp, "sha256": "XYZ"}, {**fp, "text": "the document"}):
        with pytest.raises(ValueError):
            rulesdoc.document(1, SITE, [bad], "t")
    with pytest.raises(ValueError, match="two fingerprints"):
        rulesdoc.document(1, SITE, [fp, fp], "t")
    altered = json.loads(json.dumps(env))
    altered["document"]["rules"] = ""
    with pytest.raises(central.Forged):
        rulesdoc.verify(altered, KEY.public_key())
    policy = central.sign(central.document(1, {}, "t"), KEY)
    with pytest.raises(central.Forged, match="not a rules document"):
        rulesdoc.verify(policy, KEY.public_key())
    with pytest.raises(central.Forged, match="not a policy document"):
        central.verify(env, KEY.public_key())   # neither passes for the other
    j = central.judge(env, KEY.public_key(), 4, check=rulesdoc.verify)
    assert j.outcome == "rollback"
    changes = rulesdoc.changes(doc, rulesdoc.document(4, "", [], "t"))
    assert changes["rules"] == {"before": SITE, "after": ""} and changes["fingerprints_removed"] == [fp]


# -- the agent ---------------------------------------------------------------------------
def context(tmp: Path):
    pub = tmp / "secadmin.pub.pem"
    pub.write_bytes(KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    conf = tmp / "agent.toml"
    conf.write_text(f"""
[host]
class = "unclassified"
name = "rules-pc"
[paths]
state_dir = "{tmp / 'state'}"
[central]
public_key = "{pub}"
""")
    return open_context(agent_config.load(conf))


def serving(answers: list[dict | None]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/rules"
        env = answers.pop(0)
        if env is None:
            return httpx.Response(304, headers={"ETag": '"same"'})
        return httpx.Response(200, json=env, headers={"ETag": f'"v{env["document"]["version"]}"'})
    return httpx.Client(base_url="http://collector", transport=httpx.MockTransport(handler))


def events(ctx, kind: str) -> list[dict]:
    return [e for e in ctx.spool.unacked(1000) if e["kind"] == kind]


def test_rules_are_judged_kept_and_used_by_the_scanner(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    cr = CentralRules(ctx)
    fp = {"name": "合同", "level": "top_secret", "sha256": SHA}
    other = Ed25519PrivateKey.generate()
    client = serving([envelope(2, fps=[fp]), envelope(3, rules="", key=other), envelope(1)])
    assert rules_stamp(ctx.config) is None
    assert cr.offer(2, client) == "apply"
    applied = events(ctx, "rules.applied")[-1]["details"]
    assert applied["version"] == 2 and applied["dictionaries"] == ["site.keywords"]
    assert applied["fingerprints"] == ["合同"]
    stored = ctx.config.state_dir / RULES_STORE
    assert stored.stat().st_mode & 0o777 == 0o600 and rules_stamp(ctx.config) is not None
    assert cr.offer(3, client) == "forged"
    assert cr.offer(1, client) == "rollback"
    (forged,) = events(ctx, "policy.forged")
    (older,) = events(ctx, "policy.rollback_refused")
    assert forged["details"]["document"] == older["details"]["document"] == "rules"
    assert older["details"]["offered_version"] == 1 and older["details"]["running_version"] == 2

    # the scanner's rules: the kept document beside the local ones
    rs = RuleSet.for_config(ctx.config)
    assert rs.central_version == 2
    ev = rs.evaluate([TextChunk("body", "天穹计划的进度", {"line": 1})])
    assert [(e.rule, e.level) for e in ev] == [("site.keywords", Level.SECRET)]   # replaces the shipped empty one
    ev = rs.evaluate([TextChunk("body", "plain", {"line": 1})], SHA)
    assert [(e.rule, e.level, e.location) for e in ev] == [("fingerprint.exact", Level.TOP_SECRET,
                                                             {"fingerprint": "合同"})]
    ctx.spool.close()

    # a restart verifies the kept copy; an altered copy is refused and not used by scanners
    ctx = context(tmp_path)
    cr = CentralRules(ctx)
    cr.load_stored()
    assert cr.running == 2 and events(ctx, "rules.applied")[-1]["details"]["source"] == "stored"
    env = json.loads(stored.read_text())
    env["document"]["fingerprints"] = []
    stored.write_text(json.dumps(env))
    cr = CentralRules(ctx)
    cr.load_stored()
    assert cr.running == 0
    assert events(ctx, "policy.forged")[-1]["details"]["document"] == "rules"
    assert central_rules(ctx.config) is None and RuleSet.for_config(ctx.config).central_version == 0
    ctx.spool.close()


class _Scanner:
    def __init__(self) -> None:
        self.generation, self.scans = 0, 0

    def rules_generation(self) -> int:
        return self.generation

    def scan_file(self, path: str, sha256: str | None = None):
        from baomi.agent.scan.verdict import Verdict
        self.scans += 1
        return Verdict(path=path, sha256=sha256)


def test_verdicts_made_with_older_rules_are_not_reused(tmp_path: Path) -> None:
    import os
    from baomi.agent.enforce.verdicts import Verdicts
    f = tmp_path / "f.txt"
    f.write_text("x")
    scanner = _Scanner()
    verdicts = Verdicts(scanner)
    fd = os.open(f, os.O_RDONLY)
    try:
        verdicts.for_content(fd, str(f), "a" * 64, 1)
        verdicts.for_content(fd, str(f), "a" * 64, 1)
        assert scanner.scans == 1
        scanner.generation = 1   # new central rules
        verdicts.for_content(fd, str(f), "a" * 64, 1)
        assert scanner.scans == 2
    finally:
        os.close(fd)


def test_a_running_scanner_takes_new_central_rules_without_a_restart(tmp_path: Path) -> None:
    from baomi.agent.scan.engine import Scanner
    ctx = context(tmp_path)
    doc = tmp_path / "plan.txt"
    doc.write_text("本季度天穹计划的试验安排如下。\n" * 5, encoding="utf-8")
    with Scanner(ctx.config, jobs=1) as scanner:
        before = scanner.scan_file(doc)
        assert before.inspectable and before.level == Level.PUBLIC and scanner.generation == 0
        assert CentralRules(ctx).offer(1, serving([envelope(1)])) == "apply"
        after = scanner.scan_file(doc)
        assert scanner.generation == 1 and after.level == Level.SECRET
        assert {e.rule for e in after.evidence} == {"site.keywords"}   # one per line
        assert scanner.scan_file(doc).level == Level.SECRET and scanner.generation == 1
    ctx.spool.close()


def test_exported_text_fingerprints_travel_in_the_document_and_match_excerpts(tmp_path: Path) -> None:
    import subprocess
    import sys
    from tests.scan.test_fingerprint import PARAS
    from tests.support import docs as docgen
    src = tmp_path / "方案.docx"
    src.write_bytes(docgen.docx(PARAS))
    conf = tmp_path / "agent.toml"
    conf.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n[scan]\nrule_dirs = []\n')
    out = tmp_path / "方案.fingerprint.json"
    r = subprocess.run([sys.executable, "-m", "baomi.agent.cli", "fingerprint", "export", str(src), "--level", "secret",
                        "--config", str(conf), "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    raw = out.read_bytes()
    assert PARAS[0].encode() not in raw          # hashes, not text
    entry = rulesdoc.parse_export(raw)
    assert entry is not None and entry["name"] == "方案.docx" and entry["sha256"] == hashlib.sha256(
        src.read_bytes()).hexdigest()
    doc = rulesdoc.verify(envelope(1, fps=[entry]), KEY.public_key())
    rs = RuleSet.load([], None, doc)
    excerpt = [TextChunk("body", p, {"line": i}) for i, p in enumerate(reversed(PARAS[1:]), 1)]
    ev = rs.evaluate(excerpt, "0" * 64)
    assert [e.rule for e in ev] == ["fingerprint.partial"] and ev[0].location["fingerprint"] == "方案.docx"
    assert rs.evaluate([TextChunk("body", "无关的正文内容。" * 80, {"line": 1})], "1" * 64) == []
    with pytest.raises(ValueError):
        rulesdoc.parse_export(raw.replace(b'"chars": ', b'"chars": -'))
    assert rulesdoc.parse_export(b"PK\x03\x04") is None and rulesdoc.parse_export(b'{"a": 1}') is None
