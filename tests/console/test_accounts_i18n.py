"""`baomi-collector user ...` as an operator runs it, password rules, and the
completeness of the Chinese texts."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from baomi.service import db
from baomi.service.console import auth, i18n

pytestmark = pytest.mark.timeout(120)
TEMPLATES = Path(auth.__file__).parent / "templates"


def cli(cfg: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "baomi.service.cli", *args, "--config", str(cfg)],
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_user_add_list_disable(tmp_path):
    cfg = tmp_path / "collector.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    r = cli(cfg, "user", "add", "wang.sec", "--role", "secadmin", stdin="Bao-Mi-Sec-2026!\n")
    assert r.returncode == 0, r.stderr
    for password, why in (("", "empty"), ("short1!A", "shorter"), ("wang.aud-Pass-2026", "account name"),
                          ("passwordpassword", "common"), ("aaaaaaaaaaaaaaaaaaaa", "few different")):
        r = cli(cfg, "user", "add", "wang.aud", "--role", "auditor", stdin=password + "\n")
        assert r.returncode == 1 and why in r.stderr, (password, r.stderr)
    r = cli(cfg, "user", "add", "wang.sec", "--role", "auditor", stdin="Another-Pass-2026\n")
    assert r.returncode == 1 and "one role" in r.stderr
    r = cli(cfg, "user", "add", "zhao", "--role", "root", stdin="Another-Pass-2026\n")
    assert r.returncode != 0 and "invalid choice" in r.stderr
    assert cli(cfg, "user", "add", "li.aud", "--role", "auditor", stdin="Audit-Only-2026\n").returncode == 0
    out = cli(cfg, "user", "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in out] == [["li.aud", "auditor", "active"],
                                                      ["wang.sec", "secadmin", "active"]]
    assert cli(cfg, "user", "disable", "wang.sec").returncode == 0
    assert "disabled" in cli(cfg, "user", "list").stdout.splitlines()[1]
    r = cli(cfg, "user", "disable", "nobody")
    assert r.returncode == 1 and "no account named 'nobody'" in r.stderr
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state' / 'collector.db'}")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(db.users.c.password_hash).where(db.users.c.name == "li.aud")).scalar()
        kinds = conn.execute(sa.select(db.events.c.kind).where(db.events.c.agent_id == "collector")
                             .order_by(db.events.c.pk)).scalars().all()
    assert stored.startswith("$argon2id$") and "Audit-Only-2026" not in stored
    assert kinds == ["console.user_added", "console.user_added", "console.user_disabled"]
    engine.dispose()


def test_chinese_is_complete():
    zh, en = i18n.catalog("zh_CN"), i18n.catalog("en")
    assert set(zh) == set(en)
    used = set()
    for tpl in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r't\("([a-z_]+\.[a-z_0-9.]+)"\)', tpl.read_text()))
    missing = {k for k in used if k not in zh}
    assert not missing
    for key, text in zh.items():   # every Chinese text is Chinese (names and formats aside)
        if key not in ("period.24h",):
            assert re.search(r"[\u4e00-\u9fff]", text), key


@pytest.mark.parametrize("header,cookie,want", [
    ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh_CN"), ("en-US,en;q=0.9", None, "en"),
    ("en;q=0.5,zh-TW;q=0.8", None, "zh_CN"), ("fr-FR", None, "zh_CN"), (None, None, "zh_CN"),
    ("zh-CN", "en", "en"), ("en", "xx", "en"),
])
def test_language_choice(header, cookie, want):
    assert i18n.choose(cookie, header) == want


def test_password_rules():
    assert auth.password_problem("zhang", "Correct-Horse-42") is None
    assert auth.password_problem("zhang", "correct horse battery staple") is None   # long passphrase
    assert auth.password_problem("zhang", "abcdefghijkl") is not None
    assert "account name" in auth.password_problem("zhang", "Zhang-Wei-2026!")
    assert "common" in auth.password_problem("zhang", "Admin123456!")
