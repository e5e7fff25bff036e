"""The posture component acts on classified hosts only, and only when enabled."""
from __future__ import annotations

from pathlib import Path

import pytest

from baomi.agent import config
from baomi.agent.context import open_context
from baomi.agent.posture.component import PostureComponent


@pytest.mark.parametrize("host_class,enabled", [("unclassified", True), ("classified", False)])
def test_nothing_is_watched_or_changed(tmp_path: Path, host_class: str, enabled: bool) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f'[host]\nclass = "{host_class}"\n[paths]\nstate_dir = "state"\n'
                    f'[posture]\nenabled = {str(enabled).lower()}\nrfkill_root = "rfkill"\n')
    ctx = open_context(config.load(path))
    try:
        comp = PostureComponent(ctx)
        comp.start()
        assert comp.external is None and comp.checks is None and comp._threads == []
        assert "posture" not in ctx.status
        comp.stop()
        assert list(ctx.spool.iter_events()) == []
    finally:
        ctx.spool.close()
