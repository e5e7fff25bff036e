"""The event catalogue (common/catalogue.py): every kind declared once, docs/events.md in step
with it, and no code records a kind the catalogue does not know."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from baomi.common import catalogue, events

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs/events.md"
RECORDERS = {"record", "make_event", "insert_collector_event", "_record_event"}


def _prose_kinds() -> set[str]:
    text = DOCS.read_text("utf-8")
    table = text[text.index("## Kinds"):text.index(catalogue.DOC_BEGIN)]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {k for cell in first_cells for k in re.findall(r"`([a-z_]+\.[a-z_]+)`", cell)}


def test_docs_kinds_table_matches_the_catalogue_both_ways() -> None:
    documented = _prose_kinds()
    assert documented - set(catalogue.KINDS) == set(), "documented in docs/events.md but not in the catalogue"
    assert set(catalogue.KINDS) - documented == set(), "in the catalogue but not in docs/events.md's Kinds table"


def test_docs_reference_table_is_generated_from_the_catalogue() -> None:
    text = DOCS.read_text("utf-8")
    start, end = text.index(catalogue.DOC_BEGIN), text.index(catalogue.DOC_END) + len(catalogue.DOC_END)
    assert text[start:end] == catalogue.render_markdown(), \
        "docs/events.md is out of date: run `python -m baomi.common.catalogue` and paste its output"


def _literal_kinds() -> list[tuple[str, str]]:
    """(file:line, kind) of every string literal passed as an event kind in agent/, service/, common/."""
    found = []
    for folder in ("agent", "service", "common"):
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text("utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name not in RECORDERS:
                    continue
                for arg in node.args[:2]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and \
                            re.fullmatch(r"[a-z_]+\.[a-z_.]+", arg.value):
                        found.append((f"{path.relative_to(REPO)}:{node.lineno}", arg.value))
    return found


def test_every_kind_recorded_in_code_is_in_the_catalogue() -> None:
    literal = _literal_kinds()
    assert len(literal) > 40, "the scan for recorded kinds found too little to mean anything"
    unknown = [(where, k) for where, k in literal if k not in catalogue.KINDS]
    assert unknown == []


def test_unknown_kinds_are_refused_and_severity_defaults_from_the_catalogue() -> None:
    with pytest.raises(catalogue.UnknownKind):
        events.make_event("file.copyed")
    assert events.make_event("file.blocked")["severity"] == "high"
    assert events.make_event("file.copied", severity="medium")["severity"] == "medium"


def test_security_events_come_from_the_catalogue() -> None:
    assert catalogue.is_security("file.blocked") and catalogue.is_security("registry.loaded")
    assert not catalogue.is_security("agent.heartbeat") and not catalogue.is_security("file.copied")
    assert catalogue.is_security("file.copied", "high")  # anything high or critical
    assert catalogue.TELEMETRY_KINDS == ("agent.heartbeat",)
    for k in catalogue.KINDS.values():
        assert k.severity in catalogue.SEVERITIES and set(k.objects) <= set(catalogue.OBJECTS)
        assert k.zh and k.en and k.source in ("agent", "collector", "both")
    assert catalogue.label("file.blocked", "zh_CN") == "文件拷贝被阻止"
    assert catalogue.label("file.blocked", "en") == "File copy blocked"
    assert catalogue.label("future.kind", "zh") == "future.kind"


def test_only_events_that_need_handling_are_actionable() -> None:
    for name in ("file.blocked", "file.uninspectable", "medium.denied", "policy.forged", "agent.stopped",
                 "host.external_connection", "screenlock.failed", "chain.break"):
        assert catalogue.KINDS[name].actionable and catalogue.needs_handling(name), name
    for name in ("agent.heartbeat", "agent.started", "medium.inserted", "medium.mounted", "medium.allowed",
                 "policy.applied", "discovery.finished", "file.copied", "print.job", "session.started"):
        assert not catalogue.KINDS[name].actionable and not catalogue.needs_handling(name, "info"), name
    assert catalogue.needs_handling("print.job", "info", "block")       # blocked or denied: always
    assert catalogue.needs_handling("file.copied", "high", "audit")     # raised to high by a decision table
    assert not catalogue.needs_handling("future.kind", "low")
    # every high or critical kind needs handling by its severity: declared so too, so the table reads alone
    assert [k.name for k in catalogue.KINDS.values() if k.severity in ("high", "critical") and k.source != "collector"
            and not k.actionable] == []
