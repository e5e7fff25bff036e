"""`baomi-agent discover`: what discovery found so far, or (--now) a pass at once, with a
progress bar of files and bytes on a terminal. Exit status: 0 nothing classified on record,
1 classified files on record, 2 a configuration problem or a pass already running."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("discover", help="classified files at rest on this (unclassified) host",
                        description="Show what discovery found, or run a discovery pass now (--now).")
    p.add_argument("--now", action="store_true", help="run a pass now (incremental after the first)")
    p.add_argument("--full-speed", action="store_true",
                   help="with --now: normal priority and no [discovery] cpu_share pauses")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_config_arg(p)
    p.set_defaults(func=cmd)


def _progress_bar(files: int, size: int) -> tuple[Any, Any]:
    """One bar over the files, with the bytes done beside it."""
    from rich.console import Console
    from rich.filesize import decimal
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    progress = Progress("文件 files", BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[done]}"),
                        TimeRemainingColumn(), transient=True, console=Console(stderr=True))
    task = progress.add_task("discovery", total=files, done="")
    state = {"bytes": 0}

    def advance(_: Any, nbytes: int) -> None:
        state["bytes"] += nbytes
        progress.update(task, advance=1, done=f"{decimal(state['bytes'])} / {decimal(size)}")
    return progress, advance


def _run_pass(cfg: Any, args: argparse.Namespace) -> dict[str, Any]:
    from ..context import open_context
    from ..discovery.polite import IDLE_NICE, make_idle
    from ..discovery.run import Discovery
    from ..discovery.walk import regular_files
    from ..scan.engine import Scanner
    if args.full_speed:
        cfg.discovery.cpu_share = 1.0
    else:
        make_idle()
    ctx = open_context(cfg)
    show = not args.no_progress and sys.stderr.isatty()
    try:
        with Scanner(cfg, nice=0 if args.full_speed else IDLE_NICE, idle_io=not args.full_speed) as scanner:
            disc = Discovery(cfg, ctx.record, scanner)
            if not show:
                stats = disc.run_pass()
            else:
                n = total = 0
                for _, st in regular_files(cfg.discovery.paths, disc.exclude):  # metadata only: quick
                    n, total = n + 1, total + st.st_size
                progress, advance = _progress_bar(n, total)
                with progress:
                    stats = disc.run_pass(advance)
    finally:
        ctx.spool.close()
    return {"pass": stats.number, "files": stats.files, "bytes": stats.bytes, "scanned": stats.scanned,
            "hashed": stats.hashed, "found": stats.found, "resolved": stats.resolved}


def cmd(args: argparse.Namespace) -> int:
    from ..decide.discovery import applies
    from ..discovery.run import Busy, found_by_level
    cfg = load_config(args)
    out: dict[str, Any] = {"host_class": cfg.host.class_}
    if args.now:
        if not applies(cfg.host.class_, cfg.discovery.enabled):
            print("baomi-agent discover: discovery runs on unclassified hosts with [discovery] enabled",
                  file=sys.stderr)
            return 2
        try:
            out["last_pass"] = _run_pass(cfg, args)
        except Busy as exc:
            print(f"baomi-agent discover: {exc}", file=sys.stderr)
            return 2
    out["found"] = found_by_level(cfg.state_dir)
    if args.json:
        sys.stdout.write(json.dumps(out, ensure_ascii=False, sort_keys=True) + "\n")
    else:
        if "last_pass" in out:
            p = out["last_pass"]
            print(f"pass {p['pass']}: {p['files']} files ({p['bytes']} bytes), {p['scanned']} scanned, "
                  f"{p['found']} found, {p['resolved']} resolved")
        for level, paths in sorted(out["found"].items()):
            print(f"{level}: {len(paths)}" + "".join(f"\n  {x}" for x in paths))
        if not out["found"]:
            print("no classified files on record")
    return 1 if out["found"] else 0
