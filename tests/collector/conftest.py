from __future__ import annotations

import pytest

from tests.support.collector import Collector, SigningAgent


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str | None:
    """None for the embedded SQLite file, or the URL of a fresh real PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def agent(collector: Collector) -> SigningAgent:
    """An agent enrolled with the module's `collector`."""
    a = SigningAgent(collector.url)
    assert a.enroll(collector.token()).status_code == 200
    return a
