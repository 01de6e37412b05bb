"""Vision's memory under a burst of large images: bounded while it lasts, returned after.

Vision runs as its own process (``python -m services.vision``) against the Ollama stand-in,
whose llava answers slowly so that all the model calls overlap. Twenty distinct solid-colour
4096×4096 PNGs (about 50 KB each, 64 MB each once decoded) arrive at once; the process's
peak resident memory (``VmHWM``) must stay under :data:`PEAK_BOUND_MB` and, once the burst
is answered, its resident memory (``VmRSS``) must come back to within
:data:`RETURN_MARGIN_MB` of what it was before.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from PIL import Image

from imagegen.common.v1 import common_pb2
from imagegen.vision.v1 import vision_pb2
from standins.ollama import FakeOllamaSettings, FaultKind, run_fake_ollama
from tests.common.conftest import vision_stub
from tests.vision.conftest import MODEL_ANSWER
from tools.stack import free_port

pytestmark = [pytest.mark.soak, pytest.mark.timeout(180)]

BURST = 20
SIDE = 4096
DECODE_BUDGET_MB = 256
PEAK_BOUND_MB = 512
"""Peak RSS allowed above the baseline: the 256 MiB decode budget (which counts the
reduced working copy made while downscaling for the model), Pillow's decoder buffers,
the heap of the worker threads, and the gRPC and HTTP buffers of 20 calls. Measured:
300-330 MB."""
RETURN_MARGIN_MB = 50
MODEL_DELAY_S = 2.0
ROOT = Path(__file__).parents[2]


def distinct_png(index: int) -> bytes:
    """A solid-colour SIDE×SIDE PNG; the colour (hence the hash) differs per index."""
    buffer = io.BytesIO()
    colour = (index * 11 % 256, 90, 200 - index)
    Image.new("RGB", (SIDE, SIDE), colour).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` of a process, in MiB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def _small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()


SMALL_PNG = _small_png()


async def analyse(stub: Any, data: bytes) -> grpc.StatusCode:
    try:
        await stub.AnalyzeImage(
            vision_pb2.AnalyzeImageRequest(image=common_pb2.Image(data=data)), timeout=60
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_a_burst_of_large_images_keeps_memory_bounded_and_gives_it_back() -> None:
    images = [distinct_png(i) for i in range(BURST)]
    async with run_fake_ollama(FakeOllamaSettings(num_parallel=BURST)) as ollama:
        ollama.fake.script.always(MODEL_ANSWER, model="llava")
        ollama.fake.faults.add(kind=FaultKind.DELAY, model="llava", delay_s=MODEL_DELAY_S)
        port = free_port()
        env = {
            **os.environ,
            "VISION_PORT": str(port),
            "VISION_OLLAMA_URL": ollama.url,
            "VISION_DECODE_BUDGET_MB": str(DECODE_BUDGET_MB),
            "VISION_LOG_LEVEL": "WARNING",
            "VISION_READINESS_INTERVAL_S": "3600",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.vision", cwd=ROOT, env=env
        )
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                async with asyncio.timeout(30):
                    await channel.channel_ready()
                stub = vision_stub(channel)
                # One small call first, so imports and pools are counted in the baseline.
                assert await analyse(stub, SMALL_PNG) == grpc.StatusCode.OK
                await asyncio.sleep(0.5)
                baseline = memory_mb(process.pid)["VmRSS"]
                started = time.monotonic()
                codes = await asyncio.gather(*(analyse(stub, image) for image in images))
                elapsed = time.monotonic() - started
                await asyncio.sleep(1.0)
                after = memory_mb(process.pid)
        finally:
            process.terminate()
            async with asyncio.timeout(15):
                await process.wait()
    print(
        f"baseline {baseline:.0f} MB, peak {after['VmHWM']:.0f} MB, after {after['VmRSS']:.0f} MB,"
        f" {elapsed:.1f} s, codes {sorted(c.name for c in codes)}"
    )
    # Images that found the budget full for VISION_DECODE_WAIT_S are refused, retryably.
    assert grpc.StatusCode.OK in codes
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert after["VmHWM"] - baseline < PEAK_BOUND_MB
    assert after["VmRSS"] - baseline < RETURN_MARGIN_MB
