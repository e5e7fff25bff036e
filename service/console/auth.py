"""Console accounts and sessions: argon2 password hashes, server-side sessions
that expire, CSRF tokens, and lock-out after repeated failed logins.

The session cookie holds a random token; the store keeps only its sha256, so a
copy of the database does not let anyone take over a session. Every login,
failed login, lock-out and logout is an event in the events table.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.dialects import postgresql, sqlite
from argon2.exceptions import InvalidHashError, VerificationError

from baomi.common.fsutil import private_dir

from .. import db
from ..config import ConsoleSection
from ..own_events import insert_collector_event
from .roles import ROLES

_hasher = PasswordHasher()
# Verified against when the account does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

sessions = sa.Table(
    "console_sessions", sa.MetaData(),
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

MIN_PASSWORD = 12
_COMMON = {"password", "passw0rd", "p@ssw0rd", "123456", "12345678", "1234567890", "qwerty", "qwertyuiop",
           "admin", "administrator", "root", "baomi", "letmein", "welcome", "changeme", "iloveyou", "abc123",
           "111111", "000000", "secret", "default", "123", "1234", "12345"}
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------- accounts

def check_name(name: str) -> str | None:
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS or name == "collector":
        return "account names are 1-64 characters of letters, digits, '.', '_' and '-' (not 'collector')"
    return None


def password_problem(name: str, password: str) -> str | None:
    """Why a password is too weak, or None. No default or trivial passwords (004 第三十一条)."""
    if not password:
        return "the password is empty"
    if len(password) < MIN_PASSWORD:
        return f"the password is shorter than {MIN_PASSWORD} characters"
    low = password.lower()
    if len(name) >= 3 and name.lower() in low:
        return "the password contains the account name"
    rest = low
    for word in sorted(_COMMON, key=len, reverse=True):
        rest = rest.replace(word, "")
    if len(rest) < 6:  # little left besides well-known words: "passwordpassword", "Admin123456!"
        return "the password is a common password"
    if len(set(password)) < 6:
        return "the password repeats too few different characters"
    classes = sum(any(test(c) for c in password) for test in
                  (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum()))
    if classes < 3 and len(password) < 16:
        return "use at least three of lower case, upper case, digits and symbols (or 16+ characters)"
    return None


def add_user(conn: sa.Connection, name: str, role: str, password: str, by: str = "cli") -> None:
    problem = check_name(name) or (None if role in ROLES else f"role must be one of {', '.join(ROLES)}") \
        or password_problem(name, password)
    if problem:
        raise ValueError(problem)
    if conn.execute(sa.select(db.users.c.name).where(db.users.c.name == name)).first():
        raise ValueError(f"account {name!r} already exists (one account holds exactly one role)")
    conn.execute(db.users.insert().values(name=name, role=role, password_hash=_hasher.hash(password),
                                          created_at=now(), failed_logins=0, disabled=False))
    insert_collector_event(conn, "console.user_added", user_name=by,
                           details={"account": name, "role": role})


def set_disabled(conn: sa.Connection, name: str, disabled: bool, by: str = "cli") -> None:
    res = conn.execute(db.users.update().where(db.users.c.name == name)
                       .values(disabled=disabled, failed_logins=0, locked_until=None))
    if res.rowcount == 0:
        raise ValueError(f"no account named {name!r}")
    if disabled:
        conn.execute(sessions.delete().where(sessions.c.user_name == name))
    insert_collector_event(conn, "console.user_disabled" if disabled else "console.user_enabled",
                           user_name=by, details={"account": name})


def set_password(conn: sa.Connection, name: str, password: str, by: str = "cli") -> None:
    problem = password_problem(name, password)
    if problem:
        raise ValueError(problem)
    res = conn.execute(db.users.update().where(db.users.c.name == name)
                       .values(password_hash=_hasher.hash(password), failed_logins=0, locked_until=None))
    if res.rowcount == 0:
        raise ValueError(f"no account named {name!r}")
    conn.execute(sessions.delete().where(sessions.c.user_name == name))
    insert_collector_event(conn, "console.password_changed", user_name=by, details={"account": name})


# ----------------------------------------------------------------- sessions

@dataclass(frozen=True)
class Session:
    user: str
    role: str
    csrf: str
    token_hash: str

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, str(token))


@dataclass(frozen=True)
class LoginResult:
    token: str | None        # the cookie value on success
    reason: str              # ok | bad_credentials | locked


def login(engine: sa.Engine, cfg: ConsoleSection, name: str, password: str, remote: str) -> LoginResult:
    """Every attempt is counted as a failure before the password is verified, atomically in the
    database (UPDATE ... SET failed_logins = failed_logins + 1 ... RETURNING), for the account and
    for the source address; a success takes its count back. So however many guesses run in
    parallel, in however many collector processes, at most max_failed_logins of them are ever
    verified before the account locks (and max_failed_logins_per_address per address)."""
    name = (name or "")[:128]
    password = (password or "")[:1024]
    remote = (remote or "")[:64]
    U = db.users
    t = now()
    with engine.begin() as conn:  # short: the write lock (SQLite) is not held while argon2 runs
        address_ok = _count_address(conn, cfg, remote, t)
        # the write comes first, so a SQLite transaction never has to upgrade a stale read lock
        row = conn.execute(U.update().where(U.c.name == name, U.c.disabled.is_(False))
                           .where(sa.or_(U.c.locked_until.is_(None), U.c.locked_until <= t))
                           .values(failed_logins=U.c.failed_logins + 1)
                           .returning(U.c.failed_logins, U.c.password_hash, U.c.role)).first() \
            if address_ok else None
        if row is None or row.failed_logins > cfg.max_failed_logins:
            known = conn.execute(sa.select(U.c.disabled, U.c.locked_until).where(U.c.name == name)).first()
            locked_until = _aware(known.locked_until) if known else None
            if row is not None:  # reached past the limit by parallel attempts: lock now, verify nothing
                locked_until = _lock(conn, cfg, name, t, row.failed_logins - 1, remote)
    if row is None or row.failed_logins > cfg.max_failed_logins:
        _verify(_DUMMY_HASH, password)  # the same time as a real check
        if not address_ok:
            reason, result = "address_locked", "locked"
        elif known is None or known.disabled:
            reason, result = "unknown_or_disabled", "bad_credentials"
        else:
            reason, result = "locked", "locked"
        details = {"reason": reason, "remote": remote}
        if result == "locked" and reason == "locked" and locked_until:
            details["locked_until"] = locked_until.isoformat()
        with engine.begin() as conn:
            insert_collector_event(conn, "console.login_failed", severity="low" if result != "locked" else "medium",
                                   user_name=name or None, details=details)
        return LoginResult(None, result)
    ok = _verify(row.password_hash, password)
    with engine.begin() as conn:
        if not ok:
            failed = row.failed_logins
            if failed >= cfg.max_failed_logins:
                _lock(conn, cfg, name, t, failed, remote)
            insert_collector_event(conn, "console.login_failed", severity="low", user_name=name,
                                   details={"reason": "bad_password", "remote": remote, "failures": failed})
            return LoginResult(None, "locked" if failed >= cfg.max_failed_logins else "bad_credentials")
        values: dict = {"failed_logins": 0, "locked_until": None}
        if _hasher.check_needs_rehash(row.password_hash):
            values["password_hash"] = _hasher.hash(password)
        conn.execute(U.update().where(U.c.name == name).values(**values))
        T = db.login_throttle  # this attempt was counted against the address: take it back
        conn.execute(T.update().where(T.c.source == remote, T.c.failures > 0).values(failures=T.c.failures - 1))
        token = secrets.token_urlsafe(32)
        conn.execute(sessions.delete().where(sessions.c.expires_at < t))  # housekeeping
        conn.execute(sessions.insert().values(token_hash=_sha(token), user_name=name, role=row.role,
                                              csrf=secrets.token_urlsafe(32), created_at=t,
                                              expires_at=t + dt.timedelta(seconds=cfg.session_ttl_s)))
        insert_collector_event(conn, "console.login", user_name=name, details={"role": row.role, "remote": remote})
    return LoginResult(token, "ok")


def _lock(conn: sa.Connection, cfg: ConsoleSection, name: str, t: dt.datetime, failures: int,
          remote: str) -> dt.datetime:
    U = db.users
    until = t + dt.timedelta(seconds=cfg.lockout_s)
    done = conn.execute(U.update().where(U.c.name == name)
                        .where(sa.or_(U.c.locked_until.is_(None), U.c.locked_until <= t))
                        .values(failed_logins=0, locked_until=until)).rowcount
    if done:  # one lock-out event, however many attempts reached the limit together
        insert_collector_event(conn, "console.lockout", severity="high", user_name=name,
                               details={"failures": failures, "remote": remote, "locked_until": until.isoformat()})
    return until


def _count_address(conn: sa.Connection, cfg: ConsoleSection, remote: str, t: dt.datetime) -> bool:
    """Count one attempt from `remote` (atomically, in the database); False when the address is
    locked out. Failures count within a window of lockout_s; past the limit the address is locked."""
    T = db.login_throttle
    ins = (postgresql.insert(T) if conn.dialect.name == "postgresql" else sqlite.insert(T)).values(
        source=remote, failures=1, window_start=t, locked_until=None)
    fresh = T.c.window_start <= t - dt.timedelta(seconds=cfg.lockout_s)
    locked = sa.and_(T.c.locked_until.is_not(None), T.c.locked_until > t)
    stmt = ins.on_conflict_do_update(index_elements=[T.c.source], set_={
        "failures": sa.case((locked, T.c.failures), (fresh, 1), else_=T.c.failures + 1),
        "window_start": sa.case((sa.and_(fresh, sa.not_(locked)), t), else_=T.c.window_start),
    }).returning(T.c.failures, T.c.locked_until)
    row = conn.execute(stmt).first()
    if row.locked_until is not None and _aware(row.locked_until) > t:
        return False
    if row.failures > cfg.max_failed_logins_per_address:
        until = t + dt.timedelta(seconds=cfg.lockout_s)
        conn.execute(T.update().where(T.c.source == remote).values(locked_until=until, failures=0, window_start=t))
        insert_collector_event(conn, "console.address_lockout", severity="high",
                               details={"remote": remote, "failures": row.failures, "locked_until": until.isoformat()})
        return False
    return True


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def lookup(engine: sa.Engine, cfg: ConsoleSection, token: str | None) -> Session | None:
    """The live session for a cookie value; idle sessions expire after session_ttl_s."""
    if not token or len(token) > 128:
        return None
    h = _sha(token)
    t = now()
    with engine.connect() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.token_hash == h)).first()
        if row is None or _aware(row.expires_at) <= t:
            return None
        # slide the expiry, but write at most once a minute per session (or per half ttl when shorter)
        if _aware(row.expires_at) - t < dt.timedelta(seconds=cfg.session_ttl_s - min(60, cfg.session_ttl_s / 2)):
            conn.execute(sessions.update().where(sessions.c.token_hash == h)
                         .values(expires_at=t + dt.timedelta(seconds=cfg.session_ttl_s)))
            conn.commit()
    return Session(row.user_name, row.role, row.csrf, h)


def logout(engine: sa.Engine, session: Session, remote: str) -> None:
    with engine.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.token_hash == session.token_hash))
        insert_collector_event(conn, "console.logout", user_name=session.user, details={"remote": remote})


LOGIN_CSRF_TTL_S = 3600


def secret_key(path: Path) -> bytes:
    """The console's server secret (32 random bytes), made on first use with mode 0600. Collector
    processes that share a database behind one address need the same file."""
    path = Path(path)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        private_dir(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(secrets.token_bytes(32))
            f.flush()
            os.fsync(f.fileno())
        key = path.read_bytes()
    if len(key) < 32:
        raise ValueError(f"{path}: the console key is shorter than 32 bytes")
    return key


CONSOLE_SECRET = "console_login"


def shared_secret(engine: sa.Engine, name: str = CONSOLE_SECRET) -> bytes:
    """A 32-byte secret kept in the database, made by whichever collector process asks first.
    In the database, not in a state dir, so every collector behind one load balancer accepts
    a login form another one served."""
    T = db.collector_secrets
    with engine.begin() as conn:
        ins = (postgresql.insert(T) if conn.dialect.name == "postgresql" else sqlite.insert(T)).values(
            name=name, value=secrets.token_bytes(32), created_at=now())
        conn.execute(ins.on_conflict_do_nothing(index_elements=[T.c.name]))  # the first writer wins
        key = conn.execute(sa.select(T.c.value).where(T.c.name == name)).scalar_one()
    if len(key) < 32:
        raise ValueError(f"collector secret {name!r} is shorter than 32 bytes")
    return bytes(key)


def login_csrf(secret: bytes, at: dt.datetime | None = None) -> str:
    """A fresh value for the login form's double-submit cookie, bound to the server's secret and
    to an expiry: nonce.expiry.hmac (an attacker cannot choose a pair of their own)."""
    nonce = secrets.token_urlsafe(18)
    expires = int((at or now()).timestamp()) + LOGIN_CSRF_TTL_S
    return f"{nonce}.{expires}.{_mac(secret, nonce, expires)}"


def login_csrf_ok(secret: bytes, cookie: str, form: str, at: dt.datetime | None = None) -> bool:
    if not cookie or not form or len(cookie) > 200 or not hmac.compare_digest(cookie, form):
        return False
    parts = cookie.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    nonce, expires, mac = parts[0], int(parts[1]), parts[2]
    return hmac.compare_digest(mac, _mac(secret, nonce, expires)) and (at or now()).timestamp() < expires


def _mac(secret: bytes, nonce: str, expires: int) -> str:
    return hmac.new(secret, f"login-csrf|{nonce}|{expires}".encode(), hashlib.sha256).hexdigest()[:43]
