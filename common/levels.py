"""Classification levels (密级), ordered by rank; see docs/policy.md."""
from __future__ import annotations

import enum


class Level(enum.IntEnum):
    PUBLIC = 0
    INTERNAL = 1
    CONFIDENTIAL = 2
    SECRET = 3
    TOP_SECRET = 4

    @property
    def id(self) -> str:
        return self.name.lower()

    @property
    def zh(self) -> str:
        return _ZH[self]

    @property
    def en(self) -> str:
        return self.name.replace("_", " ").title()

    @classmethod
    def parse(cls, value: "str | int | Level") -> "Level":
        """Accept an id (`secret`), a Chinese word (机密) or a rank; raise ValueError otherwise."""
        if isinstance(value, Level):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        if isinstance(value, str):
            key = value.strip().lower().replace(" ", "_").replace("-", "_")
            for level in cls:
                if key == level.id or value.strip() == level.zh:
                    return level
        raise ValueError(
            f"unknown level {value!r}; expected one of {', '.join(l.id for l in cls)}"
        )


_ZH = {
    Level.PUBLIC: "公开",
    Level.INTERNAL: "内部",
    Level.CONFIDENTIAL: "秘密",
    Level.SECRET: "机密",
    Level.TOP_SECRET: "绝密",
}

LEVEL_IDS: tuple[str, ...] = tuple(l.id for l in Level)
