"""The view's memory of files it committed moments ago (placeholders, temporary names)."""
from __future__ import annotations

import pytest

pyfuse3 = pytest.importorskip("pyfuse3", reason="the gateway's view needs pyfuse3")

from baomi.agent.gateway import view  # noqa: E402


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(view.time, "monotonic", lambda: now[0])
    return now


def test_recent_forgets_what_is_older_than_its_window(clock):
    r = view.Recent(window=60)
    r.note(("m1", "a.txt"), 10)
    clock[0] += 59
    r.note(("m1", "b.txt"), 20)
    assert r.pop(("m1", "a.txt")) == 10
    assert r.pop(("m1", "a.txt")) is None, "a pop forgets"
    clock[0] += 2
    assert r.pop(("m1", "b.txt")) == 20
    r.note(("m1", "c.txt"), 30)
    clock[0] += 61
    assert r.pop(("m1", "c.txt")) is None


def test_recent_keeps_at_most_its_limit_dropping_the_oldest(clock):
    r = view.Recent(window=60, limit=3)
    for i in range(5):
        r.note(("m1", f"{i}"), i)
    assert [r.pop(("m1", f"{i}")) for i in range(5)] == [None, None, 2, 3, 4]


def test_recent_noting_a_path_again_makes_it_young(clock):
    r = view.Recent(window=60, limit=2)
    r.note(("m1", "a"), 1)
    r.note(("m1", "b"), 2)
    r.note(("m1", "a"), 3)      # a is now the youngest: b goes first
    r.note(("m1", "c"), 4)
    assert (r.pop(("m1", "a")), r.pop(("m1", "b")), r.pop(("m1", "c"))) == (3, None, 4)
