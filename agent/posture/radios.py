"""Radios through rfkill's sysfs class (/sys/class/rfkill/rfkillN: type, name, soft, hard):
every radio is soft-blocked and kept so (004 rule 3: 涉密计算机不得使用无线网卡、无线键盘鼠标)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..decide.posture import decide_radio

log = logging.getLogger("baomi.agent.posture")


@dataclass(frozen=True)
class Radio:
    id: str                        # rfkill0, rfkill1 … (changes when a device is plugged in again)
    type: str                      # wlan, bluetooth, wwan, nfc, uwb, wimax, gps, fm
    name: str                      # phy0, hci0 …
    soft: bool
    hard: bool


def _read(path: Path) -> str:
    return path.read_text("utf-8", errors="replace").strip()


def radios(root: Path) -> list[Radio]:
    out = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    for d in entries:
        try:
            out.append(Radio(d.name, _read(d / "type"), _read(d / "name"), _read(d / "soft") == "1",
                             _read(d / "hard") == "1"))
        except OSError:
            continue  # unplugged while read
    return out


def block(root: Path, radio: Radio) -> None:
    (root / radio.id / "soft").write_text("1")


class RadioKeeper:
    """Blocks every radio it sees unblocked and records it; keeps what it blocked, by type and
    name, so an unblock later (rfkill unblock, a desktop's toggle) is told apart."""

    def __init__(self, record: Callable[..., Any], root: Path) -> None:
        self.record, self.root = record, root
        self.blocked: set[tuple[str, str]] = set()
        self.failed: set[tuple[str, str]] = set()   # reported once, not every poll
        self.first = True

    def run_once(self) -> None:
        for r in radios(self.root):
            key = (r.type, r.name)
            outcome = decide_radio(r.soft, key in self.blocked)
            if not outcome.block:
                continue
            effect: dict[str, Any] = {"effect": "rfkill_block", "radio": r.id}
            try:
                block(self.root, r)
                effect["ok"] = True
                self.blocked.add(key)
                self.failed.discard(key)
            except OSError as exc:
                if key in self.failed:
                    continue
                log.error("posture: cannot block radio %s (%s): %s", r.id, r.type, exc)
                effect.update(ok=False, error=str(exc))
                self.failed.add(key)
            assert outcome.kind is not None
            self.record(outcome.kind, severity=outcome.severity, action="block", rule="posture.radio",
                        details={"rfkill": r.id, "type": r.type, "name": r.name, "hard_blocked": r.hard,
                                 "at_start": self.first, "effects": [effect]})
        self.first = False
