"""`baomi-agent check`: the self-inspection report (保密自查) as JSON and HTML
(docs/posture.md), and its summary recorded into the agent's spool as `check.report`, which
reaches the collector like every other event. Exit status 0 when the host passes, 1 when it fails."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("check", help="self-inspection report (保密自查): network, wireless, shares, passwords")
    add_config_arg(p)
    p.add_argument("--out", metavar="DIR", help="write check.json and check.html into DIR")
    p.add_argument("--json", action="store_true", help="print the JSON report")
    p.add_argument("--no-probe", action="store_true", help="do not contact the [posture] probes")
    p.add_argument("--no-record", action="store_true",
                   help="do not record the summary (check.report) into the agent's spool for the collector")
    p.set_defaults(func=cmd)


def cmd(args: argparse.Namespace) -> int:
    from baomi.common.fsutil import atomic_write

    from ..posture import report_html
    cfg = load_config(args)
    rep = build(cfg, probe=not args.no_probe)
    text = json.dumps(rep, ensure_ascii=False, sort_keys=True, indent=1)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "check.json", text.encode(), mode=0o644)
        atomic_write(out / "check.html", report_html.render(rep).encode(), mode=0o644)
    if not args.no_record:
        record(cfg, rep)
    if args.json:
        sys.stdout.write(text + "\n")
    else:
        s = rep["summary"]
        print(f"{rep['host']['name']} ({rep['host']['class']}): {s['result'].upper()}"
              + "".join(f"\n  {r}" for r in s["reasons"]))
    return 0 if rep["summary"]["result"] == "pass" else 1


def build(cfg: Any, probe: bool = True) -> dict[str, Any]:
    """The report, as this command and the daemon's scheduled and requested checks build it."""
    from ..posture import report
    return report.build(cfg, probe=probe)


def record_into(record: Any, rep: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """check.report through record (ctx.record): the report's summary, plus extra details
    (the daemon's `scheduled`, `requested_by_collector`)."""
    from ..decide.posture import report_event
    severity, details = report_event(rep)
    return record("check.report", severity=severity, action="audit", rule="保密自查", details={**details, **extra})


def record(cfg: Any, rep: dict[str, Any]) -> dict[str, Any] | None:
    """check.report into the spool (the daemon's uploader sends it with its next batch). A user
    who cannot write the agent's state (not root) still gets the report, with a note."""
    import sqlite3

    from ..context import open_context
    try:
        ctx = open_context(cfg)
    except (OSError, sqlite3.Error) as exc:
        print(f"baomi-agent check: the report was not recorded for the collector: {exc}", file=sys.stderr)
        return None
    try:
        return record_into(ctx.record, rep)
    except (OSError, sqlite3.Error) as exc:
        print(f"baomi-agent check: the report was not recorded for the collector: {exc}", file=sys.stderr)
        return None
    finally:
        ctx.spool.close()
