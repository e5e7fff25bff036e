"""Pure parts of the enforcement path: content-hash cache, finding a renamed
file by its descriptor, messages in the user's language."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from baomi.agent import notify
from baomi.agent.enforce.paths import current_path
from baomi.agent.enforce.verdicts import VerdictCache
from baomi.common.fsutil import sha256_fd as hash_fd
from baomi.common.levels import Level
from baomi.agent.scan.verdict import Verdict


def test_cache_keeps_verdicts_by_content_and_skips_transient_failures() -> None:
    c = VerdictCache(size=2)
    c.put("a", Verdict(path="x", level=Level.SECRET))
    c.put("t", Verdict(path="y", inspectable=False, reason="timeout"))
    assert c.get("a").level == Level.SECRET
    assert c.get("t") is None  # a timeout is retried next time
    c.put("b", Verdict(path="b"))
    c.put("c", Verdict(path="c"))
    assert c.get("a") is None  # bounded, least recently used goes first
    assert c.hits == 1 and c.misses == 2


def test_hash_fd_reads_the_descriptor(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc" * 1_000_000)
    fd = os.open(p, os.O_RDONLY)
    try:
        import hashlib
        assert hash_fd(fd) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()
    finally:
        os.close(fd)


def test_current_path_follows_rename_and_reports_delete(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    p = tmp_path / "d" / "draft.tmp"
    p.write_text("x")
    fd = os.open(p, os.O_RDONLY)
    try:
        os.rename(p, tmp_path / "d" / "final.docx")
        assert current_path(fd, os.fstat(fd), str(tmp_path)) == str(tmp_path / "d" / "final.docx")
        os.unlink(tmp_path / "d" / "final.docx")
        assert current_path(fd, os.fstat(fd), str(tmp_path)) is None
    finally:
        os.close(fd)


def test_messages_follow_the_user_locale(tmp_path: Path) -> None:
    s, b = notify.render("block", "zh_CN.UTF-8", name="报告.docx", level_zh="机密", level_en="Secret",
                         reason="secret file to a personal medium", why="")
    assert "报告.docx" in s and "机密" in b and "拦截" in s
    s, b = notify.render("block", "en_US.UTF-8", name="r.docx", level_zh="机密", level_en="Secret",
                         reason="secret file to a personal medium", why="")
    assert s == "File blocked: r.docx" and "Secret" in b
    assert notify.language(None) == "en"


def test_system_locale_files(tmp_path: Path) -> None:
    (tmp_path / "locale").write_text('LANG="zh_CN.UTF-8"\n')
    assert notify.system_lang(tmp_path / "locale", tmp_path / "none") == "zh_CN.UTF-8"
    assert notify.system_lang(tmp_path / "none", tmp_path / "none2") is None


def test_user_lang_from_their_processes(tmp_path: Path) -> None:
    # this test process runs as some uid with a LANG; hint wins, then /proc
    assert notify.user_lang(os.getuid(), hint="zh_TW.UTF-8") == "zh_TW.UTF-8"
    os.environ.get("LANG")  # whatever it is, user_lang must not fail
    notify.user_lang(os.getuid())


def test_deliver_prefers_the_helper_channel() -> None:
    calls = []

    def helper(uid: int, summary: str, body: str, urgency: str) -> bool:
        calls.append((uid, summary, urgency))
        return True
    assert notify.deliver(1000, "s", "b", "critical", [helper]) == "helper"
    assert calls == [(1000, "s", "critical")]


def test_deliver_without_any_session_bus_reports_failure() -> None:
    # uid with no /run/user/UID/bus and a helper that declines
    assert notify.deliver(59999, "s", "b", "normal", [lambda *a: False]) is None


def test_enforce_nice_is_a_config_value_with_a_clear_error(tmp_path: Path) -> None:
    from baomi.agent import config
    from baomi.common.tomlconf import ConfigError
    assert config.AgentConfig().enforce.nice == 5
    conf = tmp_path / "agent.toml"
    conf.write_text("[enforce]\nnice = 19\n")
    assert config.load(conf).enforce.nice == 19
    for bad in ('"fast"', "5.5", "20", "-21"):
        conf.write_text(f"[enforce]\nnice = {bad}\n")
        with pytest.raises(ConfigError, match=r"agent.toml: enforce.nice: .*(whole number from -20 to 19|integer)"):
            config.load(conf)


