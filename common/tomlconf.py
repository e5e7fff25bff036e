"""Validated loading of TOML configuration into dataclasses.

Shared by agent.toml and collector.toml. Every error names the file, the key
and what was expected, so an operator can fix the file without reading code.
"""
from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file is unreadable or holds a wrong value."""

    def __init__(self, file: str | Path, key: str | None, message: str, line: int | None = None):
        self.file, self.key, self.line, self.message = str(file), key, line, message
        where = self.file + (f":{line}" if line else "")
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; syntax errors become ConfigError with the line number."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        line = None
        msg = str(exc)
        if "(at line " in msg:
            try:
                line = int(msg.rsplit("(at line ", 1)[1].split(",")[0])
            except ValueError:
                line = None
        raise ConfigError(path, None, f"TOML syntax error: {msg}", line=line) from None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        (arg,) = typing.get_args(tp)
        return f"a list of {_type_name(arg)}"
    if origin is dict:
        return "a table"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            Path: "a path (string)"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(value: Any, tp: Any, file: str | Path, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        for arg in args:
            try:
                return _convert(value, arg, file, key)
            except ConfigError:
                continue
        raise ConfigError(file, key, f"expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(file, key, f"expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        (arg,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(file, key, f"expected {_type_name(tp)}, got {value!r}")
        return [_convert(v, arg, file, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        k_t, v_t = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(file, key, f"expected a table, got {value!r}")
        return {str(k): _convert(v, v_t, file, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(file, key, f"expected a table, got {value!r}")
        return build(tp, value, file, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, str) and value:
            return Path(value)
    elif tp is Any:
        return value
    raise ConfigError(file, key, f"expected {_type_name(tp)}, got {value!r}")


def build(cls: type[T], data: dict[str, Any], file: str | Path, prefix: str = "") -> T:
    """Build dataclass `cls` from a TOML table; unknown keys and wrong types are errors.

    A dataclass may define `validate(self, file, prefix)` for checks beyond types.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in fields and f"{key}_" in fields:
            key = f"{key}_"  # TOML keys that are Python keywords (class)
        if key not in fields or fields[key].metadata.get("internal"):
            known = ", ".join(sorted(k.rstrip("_") for k, f in fields.items()
                                     if not f.metadata.get("internal"))) or "none"
            raise ConfigError(file, full, f"unknown key (known keys here: {known})")
        kwargs[key] = _convert(value, hints[key], file, full)
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        check(file, prefix)
    return obj


def resolve_paths(obj: Any, base: Path) -> None:
    """Make every relative Path in a (nested) config dataclass relative to `base` (the folder
    of the main file: drop-ins are pieces of it, so their paths read the same way)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Path) and not value.is_absolute():
            setattr(obj, f.name, base / value)
        elif isinstance(value, list) and value and all(isinstance(v, Path) for v in value):
            setattr(obj, f.name, [v if v.is_absolute() else base / v for v in value])
        elif dataclasses.is_dataclass(value):
            resolve_paths(value, base)


def dropins(main: Path) -> list[Path]:
    """The drop-in files of `main` (agent.toml → agent.d/*.toml), in name order."""
    folder = main.with_suffix(".d")
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".toml" and p.is_file()
                      and not p.name.startswith("."))
    except OSError:
        return []


def read_layers(main: Path, must_exist: bool = True) -> tuple[dict[str, Any], dict[str, Path]]:
    """The main file merged with its drop-ins, like fail2ban's jail.d: tables merge key by key,
    any other value (lists included) is replaced by the later file. Also returns, for every
    dotted key, the file its value came from."""
    merged: dict[str, Any] = {}
    sources: dict[str, Path] = {}
    files = ([main] if must_exist or main.exists() else []) + dropins(main)
    for path in files:
        _merge(merged, read_toml(path), path, sources, "")
    return merged, sources


def _merge(into: dict[str, Any], layer: dict[str, Any], path: Path, sources: dict[str, Path], prefix: str) -> None:
    for key, value in layer.items():
        full = prefix + key
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, path, sources, full + ".")
        else:
            into[key] = value
            for old in [k for k in sources if k.startswith(full + ".")]:
                del sources[old]
            _mark(value, path, sources, full)


def _mark(value: Any, path: Path, sources: dict[str, Path], key: str) -> None:
    sources[key] = path
    if isinstance(value, dict):
        for k, v in value.items():
            _mark(v, path, sources, f"{key}.{k}")
