"""An agent that keeps delivering: like the real uploader, it resends what was not acked
under a fresh batch number, follows the collector's batch counter on 409, and waits on
errors. Run it in a thread; `acked` and `sent` tell the test how far it got."""
from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.support.collector import SigningAgent


class LoopingAgent:
    def __init__(self, agent: SigningAgent, total: int, batch_size: int = 20) -> None:
        self.agent, self.total, self.batch_size = agent, total, batch_size
        self.pending: list[dict[str, Any]] = []   # made, not yet acked, in seq order
        self.acked = 0
        self.errors: list[str] = []               # what went wrong on the way (for messages)
        self.unexpected: list[str] = []           # answers a working collector never gives
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while self.acked < self.total and not self.stop.is_set():
            while len(self.pending) < self.batch_size and self.agent.seq < self.total:
                self.pending.append(self.agent.event("file.copied", action="audit",
                                                     file={"path": f"/media/u/报告{self.agent.seq + 1}.docx"}))
            try:
                r = self.agent.send(self.pending)
            except httpx.HTTPError as exc:  # the collector died with our request in flight
                self.errors.append(type(exc).__name__)
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                self.acked = max(self.acked, int(r.json()["acked"]))
                self.pending = [e for e in self.pending if e["seq"] > self.acked]
            elif r.status_code == 409 and "last_batch" in r.json():
                self.agent.batch = int(r.json()["last_batch"])
            elif r.status_code in (502, 503, 504):
                self.errors.append(str(r.status_code))
                time.sleep(0.05)
            else:
                self.unexpected.append(f"{r.status_code} {r.text[:200]}")
                time.sleep(0.05)

    def start(self) -> "LoopingAgent":
        self.thread.start()
        return self


def chain_problems(stored: list[dict[str, Any]], agent_id: str, total: int) -> list[str]:
    """What is wrong with one agent's stored events: every seq 1..total exactly once, each
    event's prev_hash the hash of the one before (an empty list when all is well)."""
    from baomi.common import events as ev

    mine = sorted((e for e in stored if e["agent_id"] == agent_id), key=lambda e: e["seq"])
    seqs = [e["seq"] for e in mine]
    problems = []
    if seqs != list(range(1, total + 1)):
        dup = sorted({s for s in seqs if seqs.count(s) > 1})
        missing = sorted(set(range(1, total + 1)) - set(seqs))
        problems.append(f"{agent_id}: {len(seqs)} stored, duplicates {dup[:10]}, missing {missing[:10]}")
    prev = ""
    for e in mine:
        signed = {k: v for k, v in e.items() if k != "stored_at"}  # what `events --json` adds
        if e["prev_hash"] != prev or ev.event_hash(signed) != e["hash"]:
            problems.append(f"{agent_id}: chain broken at seq {e['seq']}")
            break
        prev = e["hash"]
    return problems
