"""Cancellation and deadlines reach every downstream call, down to ComfyUI."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import grpc
import grpc.aio
import pytest

from gateway.settings import GatewaySettings
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from imagegen.vision.v1 import vision_pb2, vision_pb2_grpc
from standins.comfyui.server import FakeComfyUI
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.images import jpeg_bytes
from tests.gateway.system import System, start_gateway_in, start_system

# gRPC sends a timeout rounded up to a coarser unit (grpc-timeout header), so the receiver
# may see slightly more than was sent.
_WIRE_ROUNDING_S = 0.2


def _img2img(variants: int = 1) -> gateway_pb2.GenerateRequest:
    return gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=jpeg_bytes(120, 80)),
        instruction="Перекрась чашку в тёмно-зелёный цвет",
        variants=variants,
        seed=1,
    )


def _succeeded(fake: FakeComfyUI) -> int:
    return sum(1 for h in fake.history.values() if h["status"]["status_str"] == "success")


async def test_caller_cancel_after_first_progress_leaves_no_comfyui_job(
    exit_stack: AsyncExitStack,
) -> None:
    system = await start_system(exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.05))
    call = system.stub.Generate(_img2img(3), timeout=30)
    async for event in call:
        if event.HasField("progress"):
            break
    call.cancel()
    fake = system.comfyui.fake
    await fake.wait_until_idle(timeout_s=10)
    assert fake.queue_remaining() == 0
    assert fake.interrupt_requests, "the running prompt was not interrupted"
    assert _succeeded(fake) < 3


async def test_caller_deadline_fails_with_deadline_exceeded_and_stops_the_render(
    exit_stack: AsyncExitStack,
) -> None:
    system = await start_system(exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.5))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in system.stub.Generate(_img2img(), timeout=2.0):
            pass
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    fake = system.comfyui.fake
    await fake.wait_until_idle(timeout_s=10)
    assert fake.queue_remaining() == 0
    assert _succeeded(fake) == 0


class RecordingVision(vision_pb2_grpc.VisionServiceServicer):
    """A vision service that remembers the deadline each call arrived with."""

    def __init__(self) -> None:
        self.time_remaining: list[float | None] = []

    async def AnalyzeImage(
        self, request: vision_pb2.AnalyzeImageRequest, context: Any
    ) -> vision_pb2.AnalyzeImageResponse:
        self.time_remaining.append(context.time_remaining())
        return vision_pb2.AnalyzeImageResponse(
            analysis=common_pb2.ImageAnalysis(
                description="a cup", source=common_pb2.ANALYSIS_SOURCE_MODEL, model="llava"
            )
        )


@pytest.fixture
async def recording_vision(exit_stack: AsyncExitStack, system: System) -> RecordingVision:
    """Replaces the system's vision service (for gateways started afterwards)."""
    recording = RecordingVision()
    server = grpc.aio.server()
    vision_pb2_grpc.add_VisionServiceServicer_to_server(recording, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    exit_stack.push_async_callback(server.stop, None)
    system.addresses["vision"] = f"127.0.0.1:{port}"
    return recording


async def test_analysis_call_gets_its_share_of_the_callers_deadline(
    exit_stack: AsyncExitStack, system: System, recording_vision: RecordingVision
) -> None:
    share = GatewaySettings().analyze_budget_fraction
    gateway = await start_gateway_in(exit_stack, system)
    async for _ in gateway.stub.Generate(_img2img(), timeout=20.0):
        pass
    (remaining,) = recording_vision.time_remaining
    assert remaining is not None
    assert 0.0 < remaining <= 20.0 * share + _WIRE_ROUNDING_S


async def test_caller_without_deadline_gets_the_default_one_downstream(
    exit_stack: AsyncExitStack, system: System, recording_vision: RecordingVision
) -> None:
    share = GatewaySettings().analyze_budget_fraction
    gateway = await start_gateway_in(exit_stack, system, default_deadline_s=50.0)
    async for _ in gateway.stub.Generate(_img2img()):
        pass
    (remaining,) = recording_vision.time_remaining
    assert remaining is not None
    assert 0.0 < remaining <= 50.0 * share + _WIRE_ROUNDING_S
