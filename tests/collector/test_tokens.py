"""Enrollment tokens in bulk, for a rollout to hundreds of PCs: `token create --count`,
`--hosts FILE`, `--expires`, `--csv`; bad options and host files are refused with the
line at fault and no token made."""
from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
from pathlib import Path

import pytest

from tests.support.collector import Collector, SigningAgent

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def collector(tmp_path: Path, database: str | None):
    with Collector(tmp_path / "c", database) as c:
        yield c


def _rows(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Collector:
    """A collector's config and database, not served: the token commands need no server."""
    c = Collector(tmp_path_factory.mktemp("offline"))
    c.cli("token", "create")      # the database exists and holds one token
    return c


def _token_count(offline: Collector) -> int:
    with sqlite3.connect(offline.folder / "state" / "collector.db") as db:
        return db.execute("SELECT count(*) FROM enroll_tokens").fetchone()[0]


def test_token_create_count_csv_gives_distinct_one_time_tokens(collector: Collector) -> None:
    r = collector.cli("token", "create", "--count", "5", "--expires", "7d", "--csv")
    rows = _rows(r.stdout)
    assert r.stdout.splitlines()[0] == "token,expires_at,host_name,host_class"
    assert len(rows) == 5 and len({x["token"] for x in rows}) == 5
    expires = dt.datetime.fromisoformat(rows[0]["expires_at"])
    assert (expires - dt.datetime.now(dt.timezone.utc)).days in (6, 7)   # 7 days, less the seconds since
    assert "5 token(s)" in r.stderr
    first, second = SigningAgent(collector.url), SigningAgent(collector.url)
    assert first.enroll(rows[0]["token"], name="pc-a").status_code == 200
    assert second.enroll(rows[0]["token"], name="pc-b").status_code != 200     # one time only
    assert second.enroll(rows[1]["token"], name="pc-b").status_code == 200
    assert len(collector.stored(kind="collector.token_created")) == 5


def test_token_create_hosts_file_names_each_enrolled_host(collector: Collector, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.csv"
    hosts.write_text("# 财务部\n财务部-PC01,classified\n财务部-PC02\n\n办公室-PC01,unclassified\n",
                     encoding="utf-8")
    rows = _rows(collector.cli("token", "create", "--hosts", str(hosts), "--csv").stdout)
    assert [(x["host_name"], x["host_class"]) for x in rows] == [
        ("财务部-PC01", "classified"), ("财务部-PC02", ""), ("办公室-PC01", "unclassified")]
    a = SigningAgent(collector.url)
    assert a.enroll(rows[0]["token"], name="localhost").status_code == 200
    (enrolled,) = collector.stored(kind="agent.enrolled")
    assert enrolled["details"]["class"] == "classified"
    assert a.send([a.event()]).status_code == 200
    assert "财务部-PC01" in collector.cli("events", "--agent", a.agent_id).stdout


def test_token_create_hosts_from_stdin(offline: Collector) -> None:
    r = offline.cli("token", "create", "--hosts", "-", input="pc-1\npc-2\n")
    assert len(r.stdout.split()) == 2


@pytest.mark.parametrize("args, hosts, says", [
    (["--count", "0"], None, "--count must be 1 to"),
    (["--count", "10001"], None, "--count must be 1 to"),
    (["--expires", "7w"], None, "--expires must be"),
    (["--expires", "0d"], None, "--expires must be"),
    (["--ttl", "60", "--expires", "1d"], None, "not both"),
    (["--count", "3", "--host", "pc"], None, "not with --count"),
    (["--count", "3"], "pc-1\n", "not with --count or --host"),
    ([], "pc-1\npc-2,secret\n", "line 2"),
    ([], "pc-1\npc-1\n", "listed twice"),
    ([], "# nothing\n\n", "names no host"),
    ([], "a,b,c\n", "line 1"),
])
def test_token_create_refuses_bad_input_and_makes_no_token(offline: Collector, tmp_path: Path,
                                                           args: list[str], hosts: str | None, says: str) -> None:
    before = _token_count(offline)
    if hosts is not None:
        f = tmp_path / "hosts.txt"
        f.write_text(hosts)
        args = [*args, "--hosts", str(f)]
    r = offline.cli("token", "create", *args, check=False)
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert r.stdout == ""
    assert _token_count(offline) == before


def test_token_create_names_an_unreadable_hosts_file(offline: Collector, tmp_path: Path) -> None:
    r = offline.cli("token", "create", "--hosts", str(tmp_path / "missing.csv"), check=False)
    assert r.returncode == 2 and "missing.csv" in r.stderr


def test_enrollment_tokens_never_start_with_a_dash() -> None:
    """Regression: one token in 64 started with "-", and `baomi-agent enroll --token -x…`
    took it for an option ("argument --token: expected one argument")."""
    from baomi.service.enroll import new_token
    tokens = [new_token() for _ in range(2000)]
    assert not [t for t in tokens if t.startswith("-")]
    assert len(set(tokens)) == 2000 and all(len(t) >= 43 for t in tokens)
