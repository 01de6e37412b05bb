"""``python -m standins.ollama`` serves until it is told to stop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]


async def test_module_entry_point_serves_and_stops_on_sigterm() -> None:
    env = {**os.environ, "FAKE_OLLAMA_MODELS": '["llava:7b"]', "FAKE_OLLAMA_VERSION": "9.9.9"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "standins.ollama",
        "--port",
        "0",
        cwd=REPO,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=20)).decode()
        assert "STAND-IN" in line
        url = re.search(r"http://[\d.]+:\d+", line)
        assert url is not None
        async with httpx.AsyncClient(base_url=url.group(0)) as http:
            assert (await http.get("/api/version")).json() == {"version": "9.9.9"}
            tags = (await http.get("/api/tags")).json()["models"]
            assert [m["name"] for m in tags] == ["llava:7b"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
