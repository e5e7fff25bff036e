"""The collector installs and runs without the agent: baomi.service imports nothing of
baomi.agent, and none of the agent's own libraries (device, scanning, FUSE)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# import names of the agent extra's libraries
AGENT_ONLY = ["pyudev", "hyperscan", "pypdfium2", "pypdf", "olefile", "striprtf", "py7zr", "magic",
              "watchdog", "ahocorasick", "jeepney", "psutil", "charset_normalizer", "defusedxml", "rich",
              "tomli_w", "pyfuse3", "trio", "baomi.agent"]

PROBE = r"""
import importlib, importlib.abc, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED or any(name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{name} is agent-only and must not be needed by the collector")
        return None

sys.meta_path.insert(0, Block())
import baomi.service
count = 0
for mod in pkgutil.walk_packages(baomi.service.__path__, "baomi.service."):
    if ".migrations.versions." in mod.name or mod.name.endswith("migrations.env"):
        continue
    importlib.import_module(mod.name)
    count += 1
from baomi.service.config import CollectorConfig
from baomi.service.app import create_app
create_app(CollectorConfig())
print(count)
"""


def test_collector_imports_and_builds_its_app_without_agent_libraries(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, ",".join(AGENT_ONLY)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip().splitlines()[-1]) > 20, "too few collector modules imported to mean anything"


def test_extras_keep_agent_libraries_out_of_the_collector() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    extras = project["optional-dependencies"]

    def names(reqs: list[str]) -> set[str]:
        return {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
                for r in reqs}
    agent, collector, base = names(extras["agent"]), names(extras["collector"]), names(project["dependencies"])
    assert {"pyudev", "pypdfium2"} <= agent and {"fastapi", "sqlalchemy"} <= collector
    assert agent & collector == set() and base & (agent | collector) == set()
