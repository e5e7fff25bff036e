"""The signed central rules document (docs/rules.md "Central rules"): pure, no I/O.

    {"type": "rules", "version": 4, "issued_at": "2026-12-01T11:00:00Z",
     "rules": "<a site rule file: the TOML of rules.d>",
     "fingerprints": [{"name": "合同范本", "level": "secret", "sha256": "…"},
                      {"name": "方案", "level": "secret", "sha256": "…", "chars": 5210, "hashes": [...]}]}

signed with the security administrator's key like the policy document
(baomi.common.central: the same envelope, the same `judge` of versions). `rules` is
one rule file in exactly the format of `[scan] rule_dirs`, validated with the
scanner's own parser (baomi.common.rulefile) by the collector before it signs and by
the agent before it applies; `fingerprints` are registered documents by content hash
(only hashes: the document itself never reaches the collector's database). An entry
with `chars` and `hashes` also carries the winnowed text fingerprints that
`baomi-agent fingerprint export` makes on a PC (EXPORT_FORMAT), so excerpts match too.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from baomi.common.central import Forged, verified
from baomi.common.levels import Level
from baomi.common.rulefile import RuleError, validate

DOC_TYPE = "rules"
FIELDS = ("type", "version", "issued_at", "rules", "fingerprints")
SOURCE = "central rules"          # the file name rule errors and evidence sources name
MAX_RULES_CHARS = 1_000_000
MAX_NAME = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")
EXPORT_FORMAT = "baomi-fingerprint/1"   # what `baomi-agent fingerprint export` writes
MAX_HASHES = 200_000                    # per document: about a million characters of text
_BASE = {"name", "level", "sha256"}


def fingerprint_problem(fp: Any) -> str | None:
    if not isinstance(fp, dict) or set(fp) not in (_BASE, _BASE | {"chars", "hashes"}):
        return "a fingerprint is {name, level, sha256} and optionally {chars, hashes}"
    if "hashes" in fp:
        h, c = fp["hashes"], fp["chars"]
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            return f"fingerprint {fp.get('name')!r}: chars must be a positive integer"
        if (not isinstance(h, list) or not 0 < len(h) <= MAX_HASHES
                or any(not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < 2 ** 63 for x in h)):
            return f"fingerprint {fp.get('name')!r}: hashes must be 1–{MAX_HASHES} integers in [0, 2^63)"
    if not isinstance(fp["name"], str) or not fp["name"].strip() or len(fp["name"]) > MAX_NAME:
        return f"a fingerprint needs a name of 1–{MAX_NAME} characters"
    try:
        if Level.parse(fp["level"]) == Level.PUBLIC or fp["level"] != Level.parse(fp["level"]).id:
            return f"fingerprint {fp['name']!r}: level must be an id above public"
    except ValueError as exc:
        return f"fingerprint {fp['name']!r}: {exc}"
    if not isinstance(fp["sha256"], str) or not _SHA256.fullmatch(fp["sha256"]):
        return f"fingerprint {fp['name']!r}: sha256 must be 64 lower-case hex digits"
    return None


def export(name: str, level: str, sha256: str, chars: int, hashes: Iterable[int]) -> dict[str, Any]:
    """The file `baomi-agent fingerprint export` writes: one document's hashes, no text."""
    return {"format": EXPORT_FORMAT, "name": name, "level": level, "sha256": sha256, "chars": chars,
            "hashes": sorted(hashes)}


def parse_export(data: bytes) -> dict[str, Any] | None:
    """The fingerprint entry of an export file ({name, level, sha256, chars, hashes}); None
    when `data` is not one (then it is a document, registered by its content hash);
    ValueError for an export file that is damaged."""
    if not data.lstrip()[:1] == b"{" or EXPORT_FORMAT.encode() not in data[:4096]:
        return None
    try:
        raw = json.loads(data)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("format") != EXPORT_FORMAT:
        return None
    entry = {k: raw.get(k) for k in ("name", "level", "sha256", "chars", "hashes")}
    problem = fingerprint_problem(entry)
    if problem:
        raise ValueError(f"not a usable fingerprint file: {problem}")
    return entry


def document(version: int, rules: str, fingerprints: Iterable[Mapping[str, Any]], issued_at: str) -> dict[str, Any]:
    """A rules document; RuleError (with the line) for a bad rule file, ValueError otherwise."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    if len(rules) > MAX_RULES_CHARS:
        raise ValueError(f"the rule file is longer than {MAX_RULES_CHARS} characters")
    validate(rules, SOURCE)
    fps = [dict(f) for f in fingerprints]
    names = set()
    for f in fps:
        problem = fingerprint_problem(f)
        if problem:
            raise ValueError(problem)
        if f["name"] in names:
            raise ValueError(f"two fingerprints are named {f['name']!r}")
        names.add(f["name"])
    return {"type": DOC_TYPE, "version": version, "issued_at": issued_at, "rules": rules,
            "fingerprints": sorted(fps, key=lambda f: f["name"])}


def verify(envelope: Any, key: Ed25519PublicKey) -> dict[str, Any]:
    """The rules document if the envelope's signature verifies under `key` and its rules
    load; Forged naming why otherwise (baomi.common.central.judge's `check`)."""
    doc = verified(envelope, key)
    if set(doc) != set(FIELDS) or doc.get("type") != DOC_TYPE:
        raise Forged(f"signed, but not a rules document (fields {sorted(doc)})")
    v = doc.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise Forged("signed, but its version is not a positive integer")
    if not isinstance(doc.get("rules"), str) or not isinstance(doc.get("fingerprints"), list):
        raise Forged("signed, but its rules are not a rule file or its fingerprints not a list")
    try:
        validate(doc["rules"], SOURCE)
    except RuleError as exc:
        raise Forged(f"signed, but its rules do not load here: {exc}") from None
    for f in doc["fingerprints"]:
        problem = fingerprint_problem(f)
        if problem:
            raise Forged(f"signed, but {problem}")
    return doc


def summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What a rules document holds, for events and the console: rule counts by kind,
    dictionary ids, fingerprints by name."""
    counts = validate(doc.get("rules", ""), SOURCE)
    from baomi.common.rulefile import parse_file
    rules, _ = parse_file(SOURCE, doc.get("rules", ""))
    return {"rules": counts, "dictionaries": sorted(r.id for r in rules if not isinstance(r, str) and r.kind == "keywords"),
            "fingerprints": sorted(f["name"] for f in doc.get("fingerprints", []))}


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, Any]:
    """The audit record of a change: the rule file before and after (when it changed),
    fingerprints added and removed (name, level, sha256 — never content)."""
    def brief(f: Mapping[str, Any]) -> dict[str, Any]:   # hashes are not worth a record: their count is
        out = {k: f[k] for k in ("name", "level", "sha256")}
        if "hashes" in f:
            out["text_fingerprints"] = len(f["hashes"])
        return out
    b_fps = {f["name"]: brief(f) for f in (before or {}).get("fingerprints", [])}
    a_fps = {f["name"]: brief(f) for f in after.get("fingerprints", [])}
    out: dict[str, Any] = {}
    if (before or {}).get("rules", "") != after.get("rules", ""):
        out["rules"] = {"before": (before or {}).get("rules", ""), "after": after.get("rules", "")}
    added = [a_fps[n] for n in sorted(set(a_fps) - set(b_fps))]
    removed = [b_fps[n] for n in sorted(set(b_fps) - set(a_fps))]
    if added:
        out["fingerprints_added"] = added
    if removed:
        out["fingerprints_removed"] = removed
    return out
