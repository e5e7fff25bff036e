"""`baomi-agent config show`: the configuration in force — agent.toml merged with its
agent.d/*.toml drop-ins — with the file each value comes from."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from baomi.common.cli import action
from ..config import ConfigError
from .common import add_config_arg, load_config

SECRET_KEYS = {"token"}  # shown as set or not, never printed


def add_parser(subs: argparse._SubParsersAction) -> None:
    p = subs.add_parser("config", help="show the configuration in force (agent.toml and agent.d/ drop-ins)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    action(sub, "show", cmd_show, "every setting with its value and the file it comes from", add_config_arg,
           json_help="one JSON object: {section: {key: {value, source}}}")
    action(sub, "ready", cmd_ready, "exit 0 when the agent can run (collector URL, and a token or an "
           "enrollment); else say in one line what is missing and exit 1 (the unit's ExecCondition)",
           add_config_arg)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a table in a list ([[print.printer]])
        return {f.name.rstrip("_"): _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def settings(cfg: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """{section: {key: {"value": v, "source": file or "default"}}} for every public setting."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for section in dataclasses.fields(cfg):
        if section.metadata.get("internal"):
            continue
        obj = getattr(cfg, section.name)
        rows = out.setdefault(section.name, {})
        for f in dataclasses.fields(obj):
            key = f.name.rstrip("_")
            source = cfg.sources.get(f"{section.name}.{key}")
            value = _plain(getattr(obj, f.name))
            if key in SECRET_KEYS and value is not None:
                value = "(set, not shown)"
            rows[key] = {"value": value, "source": str(source) if source else "default"}
    return out


def _toml_value(value: Any) -> str:
    """A value as inline TOML (JSON's strings, numbers and arrays are TOML's too)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(v)}"
                                for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def cmd_show(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    table = settings(cfg)
    if args.json:
        print(json.dumps(table, ensure_ascii=False, indent=1))
        return 0
    files = [str(cfg.source)] if cfg.source else []
    files += sorted({row["source"] for rows in table.values() for row in rows.values()} - {"default", *files})
    print("# baomi-agent configuration in force; read from: " + (", ".join(files) or "built-in defaults only"))
    for section, rows in table.items():
        print(f"\n[{section}]")
        lines = {key: (f"{key} = {_toml_value(row['value'])}" if row["value"] is not None
                       else f"# {key} is not set") for key, row in rows.items()}
        width = min(60, max(len(line) for line in lines.values()))
        for key, row in rows.items():
            print(f"{lines[key]:<{width}}  # {row['source']}")
    return 0


def missing_for_run(cfg: Any) -> list[str]:
    """What the agent still needs before it runs: a collector URL, and a token unless it
    enrolled with that collector already."""
    col = cfg.collector
    if not col.url:
        return ["[collector] url"]
    from ..enroll import enrolled_with   # here: httpx is slow to load, and every command builds the parser
    if not col.token and not enrolled_with(cfg.paths.state_dir, col.url):
        return ["[collector] token (this agent has not enrolled yet)"]
    return []


def cmd_ready(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args)
    except ConfigError as exc:
        print(f"baomi-agent: not starting: {exc}", file=sys.stderr)
        return 1
    missing = missing_for_run(cfg)
    if missing:
        where = f"{cfg.source} or a drop-in in {cfg.source.parent / 'agent.d'}/" if cfg.source else "agent.toml"
        print(f"baomi-agent: not starting: set {' and '.join(missing)} in {where}", file=sys.stderr)
        return 1
    print("ready")
    return 0
