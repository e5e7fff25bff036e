"""`baomi-agent approvals request|list`: ask the security administrator to approve a copy
that was blocked (审批), and see what became of your requests. Run as the user who made
the copy; the agent takes the user from the socket, never from the command line."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from baomi.common.cli import action
from .common import print_json_line

DEFAULT_SOCKET = "/run/baomi/request.sock"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """What `baomi-agent approvals request` and `baomi-session request` take."""
    p.add_argument("file", help="the file whose copy was blocked (the original, on this computer)")
    p.add_argument("--reason", required=True, help="why it must be copied (the security administrator reads it)")
    add_socket_arg(p)


def add_socket_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", default=os.environ.get("BAOMI_REQUEST_SOCKET", DEFAULT_SOCKET),
                   help=f"the agent's request socket (default $BAOMI_REQUEST_SOCKET or {DEFAULT_SOCKET})")


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("approvals", help="ask for approval of a blocked copy (审批), see your requests")
    acts = p.add_subparsers(dest="acmd", metavar="ACTION", required=True)
    rq = acts.add_parser("request", help="ask the security administrator to approve a blocked copy")
    add_arguments(rq)
    rq.set_defaults(func=cmd_request)
    ls = action(acts, "list", cmd_list, "your requests and their decisions (root: everyone's)",
                add_socket_arg, json_help="one JSON object per line")
    ls.set_defaults(func=cmd_list)


def _ask(sock: str, msg: dict, fd: int | None = None) -> dict | None:
    from ..approvals import ask
    try:
        return ask(sock, msg, fd)
    except OSError as exc:
        print(f"无法连接 baomi 代理 / cannot reach the baomi agent at {sock}: {exc.strerror or exc}", file=sys.stderr)
        return None


def cmd_request(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
    except OSError as exc:
        print(f"{path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        answer = _ask(args.socket, {"type": "request", "reason": args.reason}, fd)
    finally:
        os.close(fd)
    if answer is None:
        return 1
    if not answer.get("ok"):
        print(f"申请未提交 / request not made: {answer.get('error')}", file=sys.stderr)
        return 1
    print(f"已提交审批申请 {answer['request_id']}:{answer.get('name')}({answer.get('level_zh') or '-'})"
          f" → {answer.get('medium') or '个人介质'}。批准或拒绝后会通知你。")
    print(f"Approval requested ({answer['request_id']}): {answer.get('name')} ({answer.get('level') or '-'})"
          f" to {answer.get('medium') or 'a personal medium'}. You will be notified of the decision.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    answer = _ask(args.socket, {"type": "list"})
    if answer is None:
        return 1
    if not answer.get("ok"):
        print(answer.get("error"), file=sys.stderr)
        return 1
    for r in answer.get("requests", []):
        if args.json:
            print_json_line(r)
        else:
            left = "" if r.get("copies") is None else f" {r.get('used', 0)}/{r['copies']}"
            print(f"{r['request_id']}  {r.get('time')}  {r.get('status'):<8}{left}  {r.get('level') or '-':<12}"
                  f" {r.get('medium') or '-'}  {r.get('name')}  {r.get('expires_at') or ''}")
    return 0
