"""A render process killed with ``kill -9`` mid-job: once it is back, ComfyUI's queue holds
none of the prompts its dead life left (nobody waits for them)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegen.render.v1 import render_pb2_grpc
from services.render.service import SERVICE_NAME
from standins.comfyui.server import RunningFakeComfyUI, run_fake_comfyui
from standins.comfyui.settings import FakeComfyUISettings
from tests.reliability.invariants import eventually
from tests.render.conftest import img2img_request
from tools.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def render_process(env: Mapping[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m services.render`` with ``env`` added; killed at the end if still alive."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.render",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'protos'}", **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def serving(channel: grpc.aio.Channel) -> bool:
    """Whether the render service answers SERVING on its health service."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=0.5)
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def held(comfy: RunningFakeComfyUI, prompt_ids: set[str]) -> set[str]:
    """Which of the prompts ComfyUI still holds (queued or running)."""
    return prompt_ids & {*comfy.fake.queued_ids, *comfy.fake.running_ids}


@pytest.mark.parametrize("version", ["0.3.64", "0.27.0"])
async def test_a_restarted_render_withdraws_what_its_killed_life_left_on_comfyui(
    version: str,
) -> None:
    # Paced like a GPU server: 8 variants of 20 steps keep it busy for ~10 s.
    paced = FakeComfyUISettings(
        step_delay_s=0.05, node_delay_s=0.05, previews_enabled=True, comfyui_version=version
    )
    async with run_fake_comfyui(paced, port=0) as comfy:
        port = free_port()
        env = {
            "RENDER_COMFYUI_URLS": comfy.url,
            "RENDER_PORT": str(port),
            "RENDER_READINESS_INTERVAL_S": "0.2",
            "RENDER_GRACE_PERIOD_S": "0",
        }
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            async with render_process(env) as first:
                await eventually(lambda: serving(channel), timeout_s=20, what="render serving")
                request = img2img_request(variants=8, seed=1)
                request.settings.steps = 20
                stub = render_pb2_grpc.RenderServiceStub(channel)  # type: ignore[no-untyped-call]
                call = stub.Render(request, timeout=60)
                await eventually(
                    lambda: len(comfy.fake.submitted) == 8 and bool(comfy.fake.running_ids),
                    timeout_s=10,
                    what="all 8 prompts queued",
                )
                first.send_signal(signal.SIGKILL)
                await first.wait()
                call.cancel()
            left = {s.prompt_id for s in comfy.fake.submitted if s.prompt_id}
            assert len(held(comfy, left)) >= 6  # the dead life's prompts go on running

            async with render_process(env):
                await eventually(
                    lambda: not held(comfy, left), timeout_s=10, what="the dead life's prompts gone"
                )
                assert comfy.fake.counters.prompts_succeeded <= 2
