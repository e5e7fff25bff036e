"""`baomi-collector user add|list|disable|enable|passwd`: the console's accounts.

There are no default accounts or passwords: the first sysadmin, secadmin and
auditor are created here. A password is read from stdin when stdin is not a
terminal (one line), else asked for twice without echo.
"""
from __future__ import annotations

import argparse
import getpass
import logging
import sys

import sqlalchemy as sa

from .. import db
from ..console import auth
from ..console.roles import ROLES
from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("user", help="console accounts (one role each)")
    usubs = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = usubs.add_parser("add", help="create an account; password from stdin or prompted twice")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add_config_arg(add)
    add.set_defaults(func=cmd_add)
    lst = usubs.add_parser("list", help="list accounts")
    add_config_arg(lst)
    lst.set_defaults(func=cmd_list)
    for action, helptext in (("disable", "disable an account and end its sessions"),
                             ("enable", "enable a disabled account"),
                             ("passwd", "set a new password (stdin or prompted twice)")):
        sp = usubs.add_parser(action, help=helptext)
        sp.add_argument("name")
        add_config_arg(sp)
        sp.set_defaults(func={"disable": cmd_disable, "enable": cmd_enable, "passwd": cmd_passwd}[action])


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _engine(args: argparse.Namespace) -> sa.Engine:
    cfg = load_config(args)
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    db.upgrade(cfg.url)
    return db.make_engine(cfg.url)


def _run(fn) -> int:
    try:
        fn()
    except ValueError as exc:
        print(f"baomi-collector user: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    engine = _engine(args)

    def go() -> None:
        problem = auth.check_name(args.name)
        if problem:
            raise ValueError(problem)
        password = _read_password()
        with engine.begin() as conn:
            auth.add_user(conn, args.name, args.role, password)
        print(f"account {args.name} created with role {args.role}")
    return _run(go)


def cmd_list(args: argparse.Namespace) -> int:
    engine = _engine(args)
    U = db.users
    with engine.connect() as conn:
        rows = conn.execute(sa.select(U.c.name, U.c.role, U.c.disabled, U.c.locked_until, U.c.created_at)
                            .order_by(U.c.name)).all()
    now = auth.now()
    for r in rows:
        locked = r.locked_until and auth._aware(r.locked_until) > now
        state = "disabled" if r.disabled else ("locked" if locked else "active")
        print(f"{r.name}\t{r.role}\t{state}\t{r.created_at:%Y-%m-%d}")
    return 0


def _toggle(args: argparse.Namespace, disabled: bool) -> int:
    engine = _engine(args)

    def go() -> None:
        with engine.begin() as conn:
            auth.set_disabled(conn, args.name, disabled)
        print(f"account {args.name} {'disabled' if disabled else 'enabled'}")
    return _run(go)


def cmd_disable(args: argparse.Namespace) -> int:
    return _toggle(args, True)


def cmd_enable(args: argparse.Namespace) -> int:
    return _toggle(args, False)


def cmd_passwd(args: argparse.Namespace) -> int:
    engine = _engine(args)

    def go() -> None:
        password = _read_password()
        with engine.begin() as conn:
            auth.set_password(conn, args.name, password)
        print(f"password of {args.name} changed")
    return _run(go)
