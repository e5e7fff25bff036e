"""The pure screen-lock decisions, without any I/O."""
from __future__ import annotations

from baomi.agent.decide.screenlock import (Policy, SessionMemory, SessionView, logind_idle_s, merge_idle,
                                           session_changes, step)

P = Policy(idle_limit_s=300, verify_s=5, helper_grace_s=60)


def view(**kw) -> SessionView:
    base = dict(id="3", uid=1000, name="alice", seat="seat0", type="x11", idle_s=0.0, locked=False, helper=True)
    return SessionView(**{**base, **kw})


def kinds(actions) -> list[str]:
    return [a.kind for a in actions]


def test_active_session_nothing_to_do() -> None:
    mem, acts = step(P, view(idle_s=10), SessionMemory(), 100.0)
    assert acts == [] and mem.crossed_at is None


def test_idle_past_limit_locks_then_records_latency() -> None:
    mem, acts = step(P, view(idle_s=302), SessionMemory(), 100.0)
    assert kinds(acts) == ["lock"] and acts[0].details["attempt"] == 1
    assert mem.crossed_at == 98.0
    mem, acts = step(P, view(idle_s=302.5), mem, 100.5)      # not locked yet, still within verify_s
    assert acts == []
    mem, acts = step(P, view(idle_s=303, locked=True), mem, 101.0)
    assert kinds(acts) == ["enforced"]
    assert acts[0].details == {"by": "agent", "attempts": 1, "latency_s": 3.0, "idle_s": 303}
    mem, acts = step(P, view(idle_s=400, locked=True), mem, 198.0)
    assert acts == []                                          # recorded once


def test_lock_not_taking_effect_fails_and_retries_with_backoff() -> None:
    mem, _ = step(P, view(idle_s=300), SessionMemory(), 0.0)
    mem, acts = step(P, view(idle_s=305), mem, 5.0)
    assert kinds(acts) == ["failed"] and acts[0].details["follow_up"] == "retry"
    mem, acts = step(P, view(idle_s=306), mem, 6.0)
    assert acts == []                                          # waiting verify_s before the next try
    mem, acts = step(P, view(idle_s=310), mem, 10.0)
    assert kinds(acts) == ["lock"] and acts[0].details["attempt"] == 2
    mem, acts = step(P, view(idle_s=315), mem, 15.0)
    assert kinds(acts) == ["failed"]
    mem, acts = step(P, view(idle_s=320), mem, 20.0)
    assert acts == []                                          # second wait is longer (10 s)
    mem, acts = step(P, view(idle_s=325), mem, 25.0)
    assert kinds(acts) == ["lock"]


def test_terminate_follow_up() -> None:
    pol = Policy(idle_limit_s=300, verify_s=5, on_failure="terminate")
    mem, _ = step(pol, view(idle_s=301), SessionMemory(), 0.0)
    mem, acts = step(pol, view(idle_s=306), mem, 5.0)
    assert kinds(acts) == ["failed", "terminate"]
    mem, acts = step(pol, view(idle_s=320), mem, 20.0)
    assert acts == []                                          # terminated once


def test_user_returning_resets_the_cycle() -> None:
    mem, _ = step(P, view(idle_s=301), SessionMemory(), 0.0)
    mem, _ = step(P, view(idle_s=302, locked=True), mem, 1.0)
    mem, acts = step(P, view(idle_s=1), mem, 50.0)             # unlocked, active
    assert acts == [] and mem.attempts == 0 and not mem.locked
    mem, acts = step(P, view(idle_s=300), mem, 400.0)
    assert kinds(acts) == ["lock"]


def test_desktop_locking_by_itself_is_recorded() -> None:
    mem, acts = step(P, view(idle_s=300, locked=True), SessionMemory(), 0.0)
    assert kinds(acts) == ["enforced"] and acts[0].details["by"] == "desktop"
    mem, acts = step(P, view(idle_s=20, locked=True), SessionMemory(), 0.0)
    assert acts == []                                          # locked by hand before the limit


def test_non_graphical_sessions_are_ignored() -> None:
    for v in (view(type="tty", idle_s=9999), view(type="unspecified", idle_s=9999, helper=False),
              view(class_="greeter", idle_s=9999)):
        assert step(P, v, SessionMemory(), 1000.0)[1] == []


def test_missing_helper_after_grace() -> None:
    mem, acts = step(P, view(helper=False), SessionMemory(first_seen=0.0), 30.0)
    assert acts == []
    mem, acts = step(P, view(helper=False), mem, 60.0)
    assert kinds(acts) == ["helper_missing"]
    mem, acts = step(P, view(helper=False), mem, 120.0)
    assert acts == []
    mem, _ = step(P, view(helper=True), mem, 130.0)
    assert not mem.helper_missing_reported


def test_absence_audit_only_records_once_without_a_warning() -> None:
    pol = Policy(idle_limit_s=300, absence_min=30, absence_action="audit")
    mem, acts = step(pol, view(idle_s=29 * 60, locked=True), SessionMemory(), 0.0)
    assert kinds(acts) == ["enforced"]  # nothing will happen: nothing to warn of
    mem, acts = step(pol, view(idle_s=30 * 60, locked=True), mem, 60.0)
    assert kinds(acts) == ["absence"] and acts[0].details["action"] == "audit"
    mem, acts = step(pol, view(idle_s=40 * 60, locked=True), mem, 600.0)
    assert acts == []
    mem, acts = step(pol, view(idle_s=5, locked=False), mem, 700.0)  # back: the next absence counts again
    mem, acts = step(pol, view(idle_s=30 * 60, locked=True), mem, 2500.0)
    assert "absence" in kinds(acts)


def test_absence_warns_a_minute_before_then_acts() -> None:
    pol = Policy(idle_limit_s=300, absence_min=30, absence_action="poweroff")
    mem, acts = step(pol, view(idle_s=29 * 60, locked=True), SessionMemory(), 0.0)
    assert kinds(acts) == ["enforced", "absence_warn"] and acts[1].details["in_s"] == 60.0
    mem, acts = step(pol, view(idle_s=29.5 * 60, locked=True), mem, 30.0)
    assert acts == []
    mem, acts = step(pol, view(idle_s=30 * 60, locked=True), mem, 60.0)
    assert kinds(acts) == ["absence"] and acts[0].details["action"] == "poweroff"
    mem, acts = step(pol, view(idle_s=31 * 60, locked=True), mem, 120.0)
    assert acts == []


def test_idle_sources() -> None:
    assert logind_idle_s(False, 1_000_000, 0, 10.0, 0.0) is None
    assert logind_idle_s(True, 4_000_000, 0, 10.0, 0.0) == 6.0
    assert logind_idle_s(True, 0, 90_000_000, 0.0, 100.0) == 10.0
    assert logind_idle_s(True, 0, 0, 10.0, 100.0) is None
    assert merge_idle(None, None) is None
    assert merge_idle(5.0, None) == 5.0 and merge_idle(None, 7.0) == 7.0 and merge_idle(5.0, 7.0) == 7.0


def test_session_changes() -> None:
    assert session_changes({"1", "2"}, {"2", "3", "4"}) == (["3", "4"], ["1"])


def test_helper_saying_locked_is_not_a_lock_but_a_dispute_once_per_attempt() -> None:
    pol = Policy(idle_limit_s=300, verify_s=5, helper_grace_s=60, dispute_after_s=2.0)
    mem, acts = step(pol, view(idle_s=302, helper_locked=True), SessionMemory(), 100.0)
    assert kinds(acts) == ["lock"]                              # logind says unlocked: lock anyway
    mem, acts = step(pol, view(idle_s=303, helper_locked=True), mem, 101.0)
    assert acts == []                                           # not yet: a report may be in flight
    mem, acts = step(pol, view(idle_s=304, helper_locked=True), mem, 102.0)
    assert kinds(acts) == ["disputed"] and acts[0].details == {
        "logind_locked": False, "helper_locked": True, "attempt": 1, "for_s": 2.0}
    mem, acts = step(pol, view(idle_s=305, helper_locked=True), mem, 103.0)
    assert acts == []                                           # once for this attempt
    mem, acts = step(pol, view(idle_s=307, helper_locked=True), mem, 105.0)
    assert kinds(acts) == ["failed"] and not mem.locked         # never "enforced" on the helper's word
    mem, acts = step(pol, view(idle_s=317, helper_locked=True), mem, 115.0)
    assert kinds(acts) == ["lock"] and mem.attempts == 2
    mem, acts = step(pol, view(idle_s=317.2, helper_locked=True), mem, 115.2)
    assert kinds(acts) == ["disputed"] and acts[0].details["attempt"] == 2   # the next attempt: once more
    # agreeing again ends the dispute; logind's lock is the proof
    mem, acts = step(pol, view(idle_s=318, locked=True, helper_locked=True), mem, 116.0)
    assert kinds(acts) == ["enforced"] and mem.disagree_since is None
