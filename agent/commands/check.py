"""`baomi-agent check`: the self-inspection report (保密自查) as JSON and HTML
(docs/posture.md). Exit status 0 when the host passes, 1 when it fails."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import add_config_arg, load_config


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("check", help="self-inspection report (保密自查): network, wireless, shares, passwords")
    add_config_arg(p)
    p.add_argument("--out", metavar="DIR", help="write check.json and check.html into DIR")
    p.add_argument("--json", action="store_true", help="print the JSON report")
    p.add_argument("--no-probe", action="store_true", help="do not contact the [posture] probes")
    p.set_defaults(func=cmd)


def cmd(args: argparse.Namespace) -> int:
    from baomi.common.fsutil import atomic_write

    from ..posture import report, report_html
    rep = report.build(load_config(args), probe=not args.no_probe)
    text = json.dumps(rep, ensure_ascii=False, sort_keys=True, indent=1)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "check.json", text.encode(), mode=0o644)
        atomic_write(out / "check.html", report_html.render(rep).encode(), mode=0o644)
    if args.json:
        sys.stdout.write(text + "\n")
    else:
        s = rep["summary"]
        print(f"{rep['host']['name']} ({rep['host']['class']}): {s['result'].upper()}"
              + "".join(f"\n  {r}" for r in s["reasons"]))
    return 0 if rep["summary"]["result"] == "pass" else 1
