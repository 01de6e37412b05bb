"""SIGTERM lets in-flight calls finish, then the process exits 0."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import grpc

from imagegen.vision.v1 import vision_pb2
from services.common.channels import create_channel
from tests.common.conftest import vision_stub

SLOW_SERVER = Path(__file__).with_name("slow_server.py")


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(20):
        line = await process.stdout.readline()
    return line.decode().strip()


async def test_sigterm_drains_the_in_flight_call_and_exits_0() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SLOW_SERVER), stdout=asyncio.subprocess.PIPE
    )
    try:
        word, port = (await read_line(process)).split()
        assert word == "listening"
        channel = create_channel(f"127.0.0.1:{port}", max_message_bytes=4 * 1024 * 1024)
        async with channel:
            call = vision_stub(channel).AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=20)
            assert await read_line(process) == "handling"
            process.send_signal(signal.SIGTERM)
            assert await call.code() == grpc.StatusCode.OK
        async with asyncio.timeout(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
