"""Putting every CUPS queue through baomi's backend, and taking it out again exactly.

`install` writes the backend program into cupsd's backend folder (root, 0700: cupsd
runs it as root) and wraps each queue's device URI (`baomi:<original>`); the original
URIs are kept in state_dir/print/queues.json, so `uninstall` gives every queue back
exactly the URI it had. `unprotected` lists the queues that bypass the backend."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from baomi.common.fsutil import atomic_write, private_dir
from .cups import SCHEME, Cups, Queue, is_wrapped, unwrap, wrap


def record_path(state_dir: Path) -> Path:
    return state_dir / "print" / "queues.json"


def originals(state_dir: Path) -> dict[str, str]:
    try:
        data = json.loads(record_path(state_dir).read_text("utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()}


def _save(state_dir: Path, record: dict[str, str]) -> None:
    private_dir(record_path(state_dir).parent)
    atomic_write(record_path(state_dir), json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True).encode())


def backend_script(config: str | None, python: str = sys.executable) -> str:
    return (f"#!{python}\n"
            "# baomi CUPS backend: written by `baomi-agent print install` (docs/printing.md)\n"
            "import sys\n"
            "from baomi.agent.print.backend import main\n"
            f"sys.exit(main(config={config!r}))\n")


def install_backend(backend_dir: Path, config: str | None) -> Path:
    """root-owned, 0700: cupsd runs a backend closed to others as root, which it needs to
    read the job's spool files and the agent's socket."""
    path = backend_dir / SCHEME
    atomic_write(path, backend_script(config).encode("utf-8"), mode=0o700)
    os.chown(path, 0, 0)
    return path


def remove_backend(backend_dir: Path) -> None:
    (backend_dir / SCHEME).unlink(missing_ok=True)


def wrap_queue(cups: Cups, state_dir: Path, queue: Queue) -> None:
    """Keep the original URI first, then wrap: a crash in between leaves a record, never a
    queue whose original is lost."""
    record = originals(state_dir)
    record[queue.name] = unwrap(queue.uri)
    _save(state_dir, record)
    cups.set_device(queue.name, wrap(queue.uri))


def protect(cups: Cups, state_dir: Path) -> list[Queue]:
    """Wrap every queue not wrapped yet; the queues wrapped now."""
    done = []
    for q in cups.queues():
        if not is_wrapped(q.uri):
            wrap_queue(cups, state_dir, q)
            done.append(q)
    return done


def unprotect(cups: Cups, state_dir: Path) -> list[tuple[str, str]]:
    """Give each recorded queue its original URI back; (queue, URI) restored. A queue
    deleted since is skipped; a queue someone re-pointed elsewhere is left as it is."""
    record = originals(state_dir)
    present = {q.name: q.uri for q in cups.queues()}
    restored = []
    for name, uri in sorted(record.items()):
        if name in present and is_wrapped(present[name]):
            cups.set_device(name, uri)
            restored.append((name, uri))
    record_path(state_dir).unlink(missing_ok=True)
    return restored


def unprotected(cups: Cups) -> list[Queue]:
    return [q for q in cups.queues() if not is_wrapped(q.uri)]
