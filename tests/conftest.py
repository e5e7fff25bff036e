"""Shared fixtures. Tests that need root or a missing tool are skipped with a reason."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, find_bindir

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
ARTIFACTS = Path(os.environ.get("BAOMI_TEST_ARTIFACTS", REPO / "test-artifacts"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (loop devices, mounts, sysfs writes)")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests keep files for people to look at (screenshots, logs)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def postgres_server():
    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries not found (scripts/setup installs postgresql)")
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    postgres_server.reset()
    return postgres_server.url
