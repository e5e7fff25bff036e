"""The staging journal: what recovery finds after a crash at any point."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from baomi.agent.gateway import staging as st


def _area(d: Path) -> st.StagingArea:
    return st.StagingArea(d, 1 << 20, durable=False)


def _records(d: Path) -> dict:
    a = _area(d)
    try:
        return dict(a.records())
    finally:
        a.close()


def test_last_line_of_an_id_wins(tmp_path: Path) -> None:
    a = _area(tmp_path)
    a.write_record("a1", {"state": st.OPEN, "relpath": "x.txt"})
    a.write_record("a1", {"state": st.CLOSED, "relpath": "y.txt"})
    a.write_record("b2", {"state": st.OPEN, "relpath": "z.txt"})
    a.close()   # no orderly shutdown needed: what is written is what a crash leaves
    assert _records(tmp_path) == {"a1": {"state": st.CLOSED, "relpath": "y.txt"},
                                  "b2": {"state": st.OPEN, "relpath": "z.txt"}}


def test_committed_entries_are_not_recovered(tmp_path: Path) -> None:
    a = _area(tmp_path)
    fd = a.create_data("c3")
    os.close(fd)
    a.write_record("c3", {"state": st.CLOSED})
    a.remove_record("c3")           # on the medium while still open: the data file stays
    a.close()
    assert _records(tmp_path) == {"c3": None}   # a leftover for recovery to delete


def test_removed_entries_leave_nothing(tmp_path: Path) -> None:
    a = _area(tmp_path)
    os.close(a.create_data("d4"))
    a.write_record("d4", {"state": st.OPEN})
    a.remove("d4")
    a.close()
    assert _records(tmp_path) == {}
    assert not (tmp_path / "d4.data").exists()


def test_line_cut_short_by_a_crash_leaves_the_line_before(tmp_path: Path) -> None:
    a = _area(tmp_path)
    a.write_record("e5", {"state": st.OPEN})
    a.close()
    with open(tmp_path / st.JOURNAL, "ab") as f:
        f.write(b'{"sid":"e5","state":"clo')        # the crash came mid-write
    assert _records(tmp_path) == {"e5": {"state": st.OPEN}}


def test_data_file_without_a_line_is_reported(tmp_path: Path) -> None:
    (tmp_path / "f6.data").write_bytes(b"x")
    assert _records(tmp_path) == {"f6": None}


def test_journal_compacts_to_live_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(st, "COMPACT_AT", 4096)
    a = _area(tmp_path)
    for i in range(500):
        a.write_record(f"g{i}", {"state": st.CLOSED, "relpath": f"dir/file-{i}.txt"})
        if i != 7:
            a.remove_record(f"g{i}")
    size = (tmp_path / st.JOURNAL).stat().st_size
    a.close()
    assert size <= 4096 + 200        # rewritten, not grown to 500 entries' worth
    assert _records(tmp_path) == {"g7": {"state": st.CLOSED, "relpath": "dir/file-7.txt"}}
