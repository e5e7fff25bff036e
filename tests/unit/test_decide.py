"""The decision tables (agent/decide/): table-driven, and docs/policy.md generated from them."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent.decide import doc
from baomi.agent.decide.arrival import decide_arrival, decide_mount, usb_device_kind
from baomi.agent.decide.at_rest import decide_at_rest, inventory_severity
from baomi.agent.decide.copy import WriteFacts, blocked_severity, decide_write
from baomi.common.catalogue import KINDS
from baomi.common.levels import Level

REPO = Path(__file__).resolve().parents[2]
L = Level

# host, medium, ceiling, level, inspectable -> kind, severity, action, effect, notify, raise_level_to
COPY_TABLE = [
    ("unclassified", "personal", None, L.PUBLIC, True, "file.copied", "info", "audit", "commit", None, None),
    ("unclassified", "personal", None, L.INTERNAL, True, "file.copied", "medium", "notify", "commit", "notify", None),
    ("unclassified", "personal", None, L.CONFIDENTIAL, True, "file.blocked", "high", "block", "quarantine", "block", None),
    ("unclassified", "personal", None, L.TOP_SECRET, True, "file.blocked", "high", "block", "quarantine", "block", None),
    ("unclassified", "personal", None, L.PUBLIC, False, "file.blocked", "high", "block", "quarantine",
     "block_uninspectable", None),
    ("classified", "personal", None, L.INTERNAL, True, "file.blocked", "high", "block", "quarantine", "block", None),
    ("classified", "registered", L.SECRET, L.SECRET, True, "file.copied", "medium", "audit", "commit", None, L.SECRET),
    ("classified", "registered", L.SECRET, L.TOP_SECRET, True, "file.blocked", "high", "block", "quarantine", "block",
     L.TOP_SECRET),
    ("unclassified", "registered", L.INTERNAL, L.INTERNAL, True, "file.copied", "low", "audit", "commit", None,
     L.INTERNAL),
    ("unclassified", "registered", L.INTERNAL, L.PUBLIC, False, "file.uninspectable", "medium", "audit", "commit",
     None, None),
    # a marking found where another part could not be read: the level's cell and its notification
    ("unclassified", "personal", None, L.SECRET, False, "file.blocked", "high", "block", "quarantine", "block", None),
    ("unclassified", "personal", None, L.INTERNAL, False, "file.blocked", "high", "block", "quarantine",
     "block_uninspectable", None),   # internal found, the rest damaged: the stricter unread cell
    ("unclassified", "registered", L.INTERNAL, L.SECRET, False, "file.blocked", "high", "block", "quarantine",
     "block", L.SECRET),
]


@pytest.mark.parametrize("host,medium,ceiling,level,inspectable,kind,severity,action,effect,notify,raise_to",
                         COPY_TABLE)
def test_copy_table(host, medium, ceiling, level, inspectable, kind, severity, action, effect, notify,
                    raise_to) -> None:
    o = decide_write(WriteFacts(host, medium, ceiling, level, inspectable))
    assert (o.kind, o.severity, o.action, o.effect, o.notify, o.raise_level_to) == \
        (kind, severity, action, effect, notify, raise_to)
    assert o.kind in KINDS


def test_copy_after_the_medium_left_or_the_file_was_deleted() -> None:
    gone = decide_write(WriteFacts("unclassified", "personal", None, L.SECRET, still_mounted=False))
    assert (gone.kind, gone.severity, gone.action, gone.effect) == ("scan.unfinished", "high", None, "record")
    assert gone.details["would_have_been"] == "block" and gone.rule == "unclassified.personal.secret"
    low = decide_write(WriteFacts("unclassified", "personal", None, L.INTERNAL, still_mounted=False))
    assert low.severity == "medium"
    deleted = decide_write(WriteFacts("unclassified", "personal", None, L.SECRET, exists=False))
    assert (deleted.kind, deleted.action, deleted.effect) == ("file.copied", "block", "record")
    assert deleted.details == {"deleted_before_verdict": True} and deleted.notify is None
    unread = decide_write(WriteFacts("unclassified", "personal", None, None))
    assert (unread.kind, unread.severity, unread.rule) == ("scan.unfinished", "high", None)


def test_copy_held_in_the_gateway_is_judged_even_when_the_medium_left() -> None:
    # held content never reached the medium: the verdict still decides quarantine or drop
    o = decide_write(WriteFacts("unclassified", "personal", None, L.SECRET, still_mounted=False, held=True))
    assert (o.kind, o.effect) == ("file.blocked", "quarantine")


def test_copy_notifies_only_a_known_writer_and_override_applies() -> None:
    o = decide_write(WriteFacts("unclassified", "personal", None, L.SECRET, writer_known=False))
    assert o.action == "block" and o.notify is None
    o = decide_write(WriteFacts("unclassified", "personal", None, L.INTERNAL),
                     {"unclassified.personal.internal": "block"})
    assert (o.kind, o.action, o.rule) == ("file.blocked", "block", "unclassified.personal.internal")
    assert blocked_severity(True) == "high" and blocked_severity(False) == "critical"


@pytest.mark.parametrize("host,medium,ceiling,action,kind,ro,deauth,mount_effect", [
    ("classified", "personal", None, "deny", "medium.denied", True, True, "unmount"),
    ("classified", "registered", L.SECRET, "allow", "medium.allowed", False, False, "watch"),
    ("unclassified", "registered", L.CONFIDENTIAL, "deny", "medium.denied", True, True, "unmount"),
    ("unclassified", "registered", L.INTERNAL, "allow", "medium.allowed", False, False, "watch"),
    ("unclassified", "personal", None, "allow", "medium.allowed", False, False, "watch"),
])
def test_arrival_table(host, medium, ceiling, action, kind, ro, deauth, mount_effect) -> None:
    a = decide_arrival(host, medium, ceiling, None, False, False)
    assert (a.decision.action, a.kind, a.set_read_only, a.deauthorize) == (action, kind, ro, deauth)
    assert decide_mount(a.decision.action, False).effect == mount_effect


def test_arrival_read_only_override_and_leftover_flag() -> None:
    a = decide_arrival("classified", "personal", None, None, False, False, {"classified.personal": "read_only"})
    assert (a.kind, a.severity, a.set_read_only, a.deauthorize) == ("medium.read_only", "medium", True, False)
    assert decide_mount("read_only", False).effect == "remount_read_only"
    assert decide_mount("read_only", True).effect == "watch"  # already read-only: nothing to do
    # a node left read-only by the previous medium is cleared for an allowed one, not for a read-only device
    assert decide_arrival("unclassified", "personal", None, None, True, False).clear_read_only
    assert not decide_arrival("unclassified", "personal", None, None, True, True).clear_read_only
    assert usb_device_kind("wireless") == "device.wireless" and usb_device_kind("storage") is None


@pytest.mark.parametrize("host,medium,ceiling,level,kind", [
    ("unclassified", "personal", None, L.PUBLIC, None),
    ("unclassified", "personal", None, L.INTERNAL, None),
    ("unclassified", "personal", None, L.CONFIDENTIAL, "file.discovered"),
    ("unclassified", "personal", None, L.TOP_SECRET, "file.discovered"),
    ("unclassified", "registered", L.SECRET, L.SECRET, None),
    ("unclassified", "registered", L.INTERNAL, L.SECRET, "file.discovered"),
])
def test_at_rest_table(host, medium, ceiling, level, kind) -> None:
    o = decide_at_rest(host, medium, level, ceiling)
    assert o.kind == kind
    if kind:
        assert o.severity == "high" and o.rule.startswith(host)
    assert inventory_severity(0) == "info" and inventory_severity(3) == "medium"


def test_docs_policy_md_holds_the_generated_tables() -> None:
    text = (REPO / "docs/policy.md").read_text("utf-8")
    start, end = text.find(doc.BEGIN), text.find(doc.END)
    assert start >= 0 and end > start, "docs/policy.md lacks the generated block"
    assert text[start:end + len(doc.END)] == doc.render(), \
        "docs/policy.md is out of date: run `python -m baomi.agent.decide.doc` and paste its output"


WM = ("internal", "confidential", "secret", "top_secret")


# host, printer, ceiling, level, inspectable -> action, rule, forward, watermark, notify
PRINT_TABLE = [
    ("unclassified", "unregistered", None, L.PUBLIC, True, "audit", "unclassified.printer.unregistered.public",
     True, False, None),
    ("unclassified", "unregistered", None, L.INTERNAL, True, "audit", "unclassified.printer.unregistered.internal",
     True, True, None),
    ("unclassified", "unregistered", None, L.CONFIDENTIAL, True, "block",
     "unclassified.printer.unregistered.confidential", False, False, "print_block"),
    ("unclassified", "unregistered", None, L.PUBLIC, False, "block", "uninspectable.printer.unregistered",
     False, False, "print_block_uninspectable"),
    ("classified", "unregistered", None, L.PUBLIC, True, "block", "classified.printer.unregistered.public",
     False, False, "print_block"),
    ("classified", "registered", L.SECRET, L.SECRET, True, "audit", "classified.printer.registered.within_ceiling",
     True, True, None),
    ("classified", "registered", L.SECRET, L.TOP_SECRET, True, "block",
     "classified.printer.registered.above_ceiling", False, False, "print_block"),
    ("classified", "registered", L.SECRET, L.PUBLIC, False, "audit", "uninspectable.printer.registered",
     True, True, None),
    ("classified", "registered", L.SECRET, L.TOP_SECRET, False, "block",
     "classified.printer.registered.above_ceiling", False, False, "print_block"),
]


@pytest.mark.parametrize("host,printer,ceiling,level,inspectable,action,rule,forward,watermark,notify", PRINT_TABLE)
def test_print_table(host, printer, ceiling, level, inspectable, action, rule, forward, watermark, notify) -> None:
    from baomi.agent.decide.print import PrintFacts, decide_print
    o = decide_print(PrintFacts(host, printer, ceiling, level, inspectable), WM)
    assert (o.action, o.rule, o.forward, o.watermark, o.notify) == (action, rule, forward, watermark, notify)
    assert o.kind in KINDS and o.severity == ("high" if action == "block" else o.severity)


def test_print_overrides_and_watermark_setting() -> None:
    from baomi.agent.decide.print import PrintFacts, decide_print
    from baomi.common.policy import validate_overrides
    facts = PrintFacts("unclassified", "unregistered", None, L.INTERNAL)
    o = decide_print(facts, WM, {"unclassified.printer.unregistered.internal": "notify"})
    assert (o.action, o.forward, o.notify, o.severity) == ("notify", True, "print_notify", "medium")
    assert not decide_print(facts, ()).watermark  # watermark turned off for every level
    assert not decide_print(PrintFacts("unclassified", "unregistered", None, L.INTERNAL, user_known=False),
                            WM, {"unclassified.printer.unregistered.internal": "block"}).notify
    assert validate_overrides({"classified.printer.registered.above_ceiling": "audit"}) is None
    assert "must be one of" in validate_overrides({"uninspectable.printer.registered": "deny"})


def test_print_data_that_cannot_take_the_watermark() -> None:
    from baomi.agent.decide.print import WATERMARK_REQUIRED_RULE, PrintFacts, decide_print
    facts = PrintFacts("unclassified", "unregistered", None, L.INTERNAL, stampable=False)
    o = decide_print(facts, WM)
    assert (o.action, o.forward, o.watermark) == ("audit", True, False)  # printed, unstamped, recorded so
    o = decide_print(facts, WM, watermark_required=True)
    assert (o.action, o.rule, o.forward, o.severity, o.notify) == ("block", WATERMARK_REQUIRED_RULE, False, "high",
                                                                    "print_block")
    public = PrintFacts("unclassified", "unregistered", None, L.PUBLIC, stampable=False)
    assert decide_print(public, WM, watermark_required=True).forward  # no watermark wanted: nothing missing
