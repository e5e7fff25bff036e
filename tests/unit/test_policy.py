"""The policy matrix, cell by cell (docs/policy.md)."""
from __future__ import annotations

import pytest

from baomi.common.levels import Level
from baomi.common.policy import device_action, file_action, from_unread_part, print_action, validate_overrides

DEVICE_TABLE = [
    ("classified", "personal", None, "deny", "classified.personal"),
    ("classified", "registered", Level.TOP_SECRET, "allow", "classified.registered"),
    ("classified", "registered", Level.PUBLIC, "allow", "classified.registered"),
    ("unclassified", "registered", Level.CONFIDENTIAL, "deny", "unclassified.registered.classified"),
    ("unclassified", "registered", Level.SECRET, "deny", "unclassified.registered.classified"),
    ("unclassified", "registered", Level.INTERNAL, "allow", "unclassified.registered.unclassified"),
    ("unclassified", "personal", None, "allow", "unclassified.personal"),
]


@pytest.mark.parametrize("host,medium,ceiling,action,rule", DEVICE_TABLE)
def test_device_table(host, medium, ceiling, action, rule) -> None:
    d = device_action(host, medium, ceiling)
    assert (d.action, d.rule) == (action, rule)


def test_device_host_class_not_allowed_and_override() -> None:
    d = device_action("classified", "registered", Level.SECRET, allowed_host_classes=["unclassified"])
    assert d.action == "deny" and d.rule == "registered.host_class_not_allowed"
    d = device_action("classified", "personal", overrides={"classified.personal": "read_only"})
    assert d.action == "read_only"
    with pytest.raises(ValueError, match="must be one of"):
        device_action("classified", "personal", overrides={"classified.personal": "block"})


@pytest.mark.parametrize("level,action", [
    (Level.PUBLIC, "audit"), (Level.INTERNAL, "notify"), (Level.CONFIDENTIAL, "block"),
    (Level.SECRET, "block"), (Level.TOP_SECRET, "block")])
def test_file_to_personal_on_unclassified(level, action) -> None:
    assert file_action("unclassified", "personal", level).action == action


@pytest.mark.parametrize("host", ["classified", "unclassified"])
@pytest.mark.parametrize("ceiling", list(Level))
@pytest.mark.parametrize("level", list(Level))
def test_file_to_registered_blocks_only_above_ceiling(host, ceiling, level) -> None:
    d = file_action(host, "registered", level, ceiling)
    assert d.action == ("block" if level > ceiling else "audit")


def test_uninspectable_defaults_and_override() -> None:
    assert file_action("unclassified", "personal", Level.PUBLIC, inspectable=False).action == "block"
    assert file_action("unclassified", "registered", Level.PUBLIC, Level.SECRET, inspectable=False).action == "audit"
    assert file_action("unclassified", "personal", Level.PUBLIC, inspectable=False,
                       overrides={"uninspectable.personal": "notify"}).action == "notify"


def test_override_validation_names_key() -> None:
    assert validate_overrides({"unclassified.personal.internal": "block"}) is None
    assert "unknown policy rule" in validate_overrides({"nope": "block"})
    assert "device action" in validate_overrides({"classified.personal": "notify"})


@pytest.mark.parametrize("reason, cell, action", [
    ("encrypted", "uninspectable.personal.encrypted", "block"),
    ("corrupt", "uninspectable.personal.damaged_or_over_limits", "block"),
    ("limit_exceeded", "uninspectable.personal.damaged_or_over_limits", "block"),
    ("timeout", "uninspectable.personal.damaged_or_over_limits", "block"),
    ("too_large", "uninspectable.personal.damaged_or_over_limits", "block"),
    ("something new", "uninspectable.personal.damaged_or_over_limits", "block"),   # fails closed
    (None, "uninspectable.personal.damaged_or_over_limits", "block"),
    ("unsupported", "uninspectable.personal.unsupported", "audit"),
])
def test_uninspectable_cell_follows_the_reason(reason, cell, action):
    d = file_action("unclassified", "personal", Level.PUBLIC, inspectable=False, reason=reason)
    assert (d.rule, d.action) == (cell, action)


def test_uninspectable_toward_registered_media_is_audited_whatever_the_reason():
    for reason in ("encrypted", "corrupt", "unsupported"):
        d = file_action("classified", "registered", Level.PUBLIC, Level.SECRET, inspectable=False, reason=reason)
        assert d.action == "audit", reason


def test_uninspectable_medium_class_setting_covers_its_kinds_and_a_full_cell_wins():
    older = {"uninspectable.personal": "notify"}
    for reason in ("encrypted", "corrupt", "unsupported"):
        assert file_action("unclassified", "personal", Level.PUBLIC, inspectable=False, overrides=older,
                           reason=reason).action == "notify"
    both = {**older, "uninspectable.personal.unsupported": "allow"}
    assert file_action("unclassified", "personal", Level.PUBLIC, inspectable=False, overrides=both,
                       reason="unsupported").action == "allow"
    assert file_action("unclassified", "personal", Level.PUBLIC, inspectable=False, overrides=both,
                       reason="encrypted").action == "notify"
    assert validate_overrides(both) is None
    assert "unknown policy rule" in validate_overrides({"uninspectable.personal.images": "allow"})


# A marking found in the readable part of a file was outweighed by the part that could not
# be read: a secret report zipped with an executable went to a personal stick with an audit.
@pytest.mark.parametrize("reason", ["unsupported", "encrypted", "corrupt"])
def test_marking_found_in_a_partly_read_file_is_not_outweighed_by_its_unread_part(reason):
    d = file_action("unclassified", "personal", Level.SECRET, inspectable=False, reason=reason)
    assert (d.action, d.rule) == ("block", "unclassified.personal.secret")
    assert not from_unread_part(d)
    # above a registered medium's ceiling, although unread parts toward registered media are audited
    d = file_action("unclassified", "registered", Level.TOP_SECRET, Level.INTERNAL, inspectable=False, reason=reason)
    assert (d.action, d.rule) == ("block", "unclassified.registered.above_ceiling")
    # within the ceiling the stricter of the two still applies
    d = file_action("classified", "registered", Level.SECRET, Level.SECRET, inspectable=False, reason=reason)
    assert d.action == "audit"


def test_partly_read_file_keeps_the_stricter_unread_cell():
    # internal found (notify) beside an encrypted member (block): the encrypted cell wins
    d = file_action("unclassified", "personal", Level.INTERNAL, inspectable=False, reason="encrypted")
    assert (d.action, d.rule) == ("block", "uninspectable.personal.encrypted")
    assert from_unread_part(d)
    # internal found beside an unsupported member: the level's notify, not the unread part's audit
    d = file_action("unclassified", "personal", Level.INTERNAL, inspectable=False, reason="unsupported")
    assert (d.action, d.rule) == ("notify", "unclassified.personal.internal")
    # a site that relaxes the unread cell does not relax the level's
    d = file_action("unclassified", "personal", Level.SECRET, inspectable=False, reason="encrypted",
                    overrides={"uninspectable.personal": "allow"})
    assert d.action == "block"


def test_print_of_a_partly_read_marked_document_follows_the_level_found():
    d = print_action("unclassified", "registered", Level.TOP_SECRET, Level.SECRET, inspectable=False)
    assert (d.action, d.rule) == ("block", "unclassified.printer.registered.above_ceiling")
    d = print_action("unclassified", "registered", Level.PUBLIC, Level.SECRET, inspectable=False)
    assert (d.action, d.rule) == ("audit", "uninspectable.printer.registered")
