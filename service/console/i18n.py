"""The console's languages: Chinese (zh_CN, complete) and English, chosen by the
browser's Accept-Language unless the user picked one with the switch (cookie)."""
from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

LOCALES: tuple[str, ...] = ("zh_CN", "en")
DEFAULT = "zh_CN"
COOKIE = "baomi_lang"
_DIR = Path(__file__).parent / "locale"


def _flatten(prefix: str, data: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(name + ".", value, out)
        else:
            out[name] = str(value)


@lru_cache(maxsize=None)
def catalog(locale: str) -> dict[str, str]:
    with open(_DIR / f"{locale}.toml", "rb") as fh:
        out: dict[str, str] = {}
        _flatten("", tomllib.load(fh), out)
        return out


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The user's choice wins; else the first supported language the browser asks for (by q)."""
    if cookie in LOCALES:
        return cookie  # type: ignore[return-value]
    prefs: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        prefs.append((-q, i, tag.strip().lower()))
    for _q, _i, tag in sorted(prefs):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def translator(locale: str) -> Callable[..., str]:
    """t("key", name=value) -> the text in `locale`; unknown keys show as the key itself."""
    texts = catalog(locale)

    def t(key: str, **kwargs: Any) -> str:
        text = texts.get(key, key)
        return text.format(**kwargs) if kwargs else text
    return t
