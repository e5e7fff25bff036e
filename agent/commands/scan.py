"""`baomi-agent scan PATH...`: the level of each file and why.

Exit status: 0 nothing at or above confidential, 1 something was, 2 usage
error or a path that does not exist."""
from __future__ import annotations

import argparse
import os
import sys

from baomi.common.levels import Level
from ..scan.spawn import Started, start_workers
from .common import add_config_arg, load_config, print_json_line


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("scan", help="find classification markings in files and folders",
                        description="Scan files and folders (recursively) for classification markings.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    p.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: [scan] jobs, or all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    add_config_arg(p)
    p.set_defaults(func=run)


def _line(v) -> str:
    if not v.inspectable:
        state = f"NOT INSPECTED ({v.reason}: {v.detail})" if v.detail else f"NOT INSPECTED ({v.reason})"
    else:
        state = ""
    ev = ", ".join(sorted({f"{e.rule}@{e.zone}" + (f"[{e.location.get('member')}]" if e.location.get("member") else "")
                           for e in v.evidence}))
    return f"{v.level.id:<12} {v.path}" + (f"  — {ev}" if ev else "") + (f"  {state}" if state else "")


def _workers_wanted(args: argparse.Namespace) -> int:
    """How many workers to start before the configuration is read: one per file named,
    as many as may run for a folder; the configuration's [scan] jobs may lower it."""
    most = args.jobs or os.cpu_count() or 1
    if any(os.path.isdir(p) for p in args.paths):
        return most
    return min(most, len(args.paths))


def run(args: argparse.Namespace) -> int:
    missing = []
    for p in args.paths:
        try:
            os.lstat(p)
        except OSError as exc:
            missing.append(f"baomi-agent scan: {p}: "
                           + ("no such file or folder" if isinstance(exc, FileNotFoundError) else exc.strerror))
    if missing:
        print("\n".join(missing), file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print("baomi-agent scan: --jobs must be at least 1", file=sys.stderr)
        return 2
    # the workers load their parsers while this process reads its configuration and rules
    started = start_workers(_workers_wanted(args))
    try:
        return _scan(args, started)
    finally:
        for w in started:       # those the scanner did not take (a bad rule file, say)
            w.discard()


def _scan(args: argparse.Namespace, started: list[Started]) -> int:
    from ..scan.engine import Scanner, file_count
    from ..scan.rules import RuleError, RuleSet
    cfg = load_config(args)
    try:
        ruleset = RuleSet.for_config(cfg)
    except RuleError as exc:
        print(f"baomi-agent scan: {exc}", file=sys.stderr)
        return 2
    jobs = args.jobs or (cfg.scan.jobs if cfg.source else (os.cpu_count() or 1))
    found = Level.PUBLIC
    show_bar = not args.no_progress and sys.stderr.isatty()
    with Scanner(cfg, ruleset, jobs=jobs, prestarted=started) as scanner:
        if show_bar:
            from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
            total_files, total_bytes = file_count(args.paths)
            progress = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                DownloadColumn(), TimeRemainingColumn(), transient=True,
                                console=__import__("rich.console").console.Console(stderr=True))
            files_task = progress.add_task("files", total=total_files)
            bytes_task = progress.add_task("bytes", total=total_bytes, visible=False)
            progress.start()
        try:
            for v in scanner.scan_paths(args.paths):
                if show_bar:
                    progress.advance(files_task)
                    progress.advance(bytes_task, v.size)
                found = max(found, v.level)
                if args.json:
                    print_json_line(v.to_json())
                else:
                    print(_line(v), flush=False)
        except KeyboardInterrupt:
            print("baomi-agent scan: interrupted", file=sys.stderr)
            return 130
        finally:
            if show_bar:
                progress.stop()
            sys.stdout.flush()
    return 1 if found >= Level.CONFIDENTIAL else 0
