"""A private cupsd with baomi's backend installed, and the agent's print component
running in this process (its socket, its scanner, its spool)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from baomi.agent import config as config_mod
from baomi.agent.context import open_context
from tests.support.cups import CupsServer, need_cups
from tests.support.enforce_harness import real_scanner


class PrintRig:
    def __init__(self, tmp: Path, printers: str = "", extra: str = "", host_class: str = "unclassified") -> None:
        need_cups()
        tmp.mkdir(parents=True, exist_ok=True)
        self.cups = CupsServer().start()
        self.tmp = tmp
        self.dev = self.cups.root / "dev"
        self.config_path = tmp / "agent.toml"
        self.config_path.write_text(
            f'[host]\nclass = "{host_class}"\n[paths]\nstate_dir = "{tmp / "state"}"\n[scan]\nrule_dirs = []\n'
            f'[print]\nsocket = "{self.cups.root / "agent/print.sock"}"\ncups_server = "{self.cups.socket}"\n'
            f'backend_dir = "{self.cups.backend_dir}"\nrecheck_s = 3600\n{extra}\n{printers}\n')
        self.cfg = config_mod.load(self.config_path)
        self.ctx: Any = None
        self.component: Any = None
        self.scanner: Any = None

    def queue(self, name: str, ppd: Path | None = None, model: str | None = None) -> Path:
        out = self.dev / f"{name}.out"
        self.cups.add_queue(name, f"file://{out}", ppd, model)
        return out

    def install(self) -> str:
        done = subprocess.run([sys.executable, "-m", "baomi.agent.cli", "print", "install", "--config",
                               str(self.config_path)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start_agent(self) -> None:
        from baomi.agent.print.component import PrintComponent
        self.ctx = open_context(self.cfg)
        self.scanner = real_scanner(self.cfg)
        self.component = PrintComponent(self.ctx, self.scanner)
        self.component.start()

    def stop_agent(self) -> None:
        if self.component is not None:
            self.component.stop()
            self.component = None
        if self.scanner is not None:
            self.scanner.close()
            self.scanner = None
        if self.ctx is not None:
            self.ctx.spool.close()
            self.ctx = None

    def events(self, kind: str) -> list[dict[str, Any]]:
        return list(self.ctx.spool.iter_events(kind=kind))

    def job_event(self, job: int) -> dict[str, Any]:
        found = [e for e in self.events("print.job") if e["details"].get("job_id") == job]
        assert len(found) == 1, (found, self.cups.log_of(job))
        return found[0]

    def close(self) -> None:
        try:
            self.stop_agent()
        finally:
            self.cups.stop()


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Any]:
    rigs: list[PrintRig] = []

    def make(printers: str = "", extra: str = "", host_class: str = "unclassified") -> PrintRig:
        rig = PrintRig(tmp_path / f"rig{len(rigs)}", printers, extra, host_class)
        rigs.append(rig)
        return rig
    yield make
    for rig in rigs:
        rig.close()
