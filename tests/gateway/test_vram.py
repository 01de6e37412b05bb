"""Handing the GPU to ComfyUI (single-GPU mode): vision and planner release their models.

Real vision and planner servers on port 0 in front of the Ollama stand-in; the gateway's
hook reaches them through its own channels and speaks to no model server itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from gateway.downstream import Downstream
from gateway.vram import GpuHandover
from services.common.llm import ChatMessage, ChatRequest
from services.common.llm.ollama import OllamaClient
from services.planner.app import create_server as create_planner
from services.planner.settings import PlannerSettings
from services.vision.app import create_server as create_vision
from services.vision.settings import VisionSettings
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings
from tests.gateway.system import stop_host

NOWHERE = "127.0.0.1:1"
"""A port nothing listens on."""


@pytest.fixture
async def ollama() -> AsyncIterator[RunningFakeOllama]:
    async with run_fake_ollama(FakeOllamaSettings(max_loaded_models=2), port=0) as running:
        yield running


async def _downstream(
    stack: AsyncExitStack, ollama: RunningFakeOllama, **planner: Any
) -> Downstream:
    """Vision and planner on the stand-in, and the gateway's channels to them."""
    common: dict[str, Any] = {"port": 0, "ollama_url": ollama.url, "readiness_interval_s": 3600}
    vision = await create_vision(VisionSettings(**common))
    planner_host = await create_planner(PlannerSettings(**(common | planner)))
    addresses = []
    for host in (vision, planner_host):
        addresses.append(f"127.0.0.1:{await host.start()}")
        stack.push_async_callback(stop_host, host)
    downstream = Downstream.connect(
        vision_address=addresses[0],
        planner_address=addresses[1],
        render_address=NOWHERE,
        max_message_bytes=1024 * 1024,
    )
    stack.push_async_callback(downstream.close)
    return downstream


async def _load(ollama: RunningFakeOllama, *models: str) -> None:
    client = OllamaClient(ollama.url, timeout_s=10.0)
    try:
        for model in models:
            await client.chat(ChatRequest(model=model, messages=(ChatMessage("user", "hi"),)))
    finally:
        await client.aclose()


def _unload_requests(ollama: RunningFakeOllama) -> list[str]:
    return [
        str(r.model)
        for r in ollama.fake.requests_to("/api/chat")
        if isinstance(r.body, dict) and r.body.get("keep_alive") == 0
    ]


async def test_loaded_models_leave_the_gpu(ollama: RunningFakeOllama) -> None:
    async with AsyncExitStack() as stack:
        downstream = await _downstream(stack, ollama)
        await _load(ollama, "llava", "gpt-oss:20b")
        assert sorted(ollama.fake.resident_models()) == ["gpt-oss:20b", "llava:latest"]
        handover = GpuHandover(downstream, timeout_s=5.0)
        assert await handover() == []
    assert ollama.fake.resident_models() == []
    assert sorted(_unload_requests(ollama)) == ["gpt-oss:20b", "llava"]
    assert handover.handovers == 1


async def test_each_service_releases_only_its_own_model(ollama: RunningFakeOllama) -> None:
    async with AsyncExitStack() as stack:
        downstream = await _downstream(stack, ollama)
        await _load(ollama, "gpt-oss:20b")
        assert await GpuHandover(downstream, timeout_s=5.0)() == []
    assert _unload_requests(ollama) == ["gpt-oss:20b"]


async def test_nothing_loaded_means_nothing_to_unload(ollama: RunningFakeOllama) -> None:
    async with AsyncExitStack() as stack:
        handover = GpuHandover(await _downstream(stack, ollama), timeout_s=5.0)
        assert await handover() == []
    assert _unload_requests(ollama) == []
    assert handover.handovers == 0


async def test_unreachable_ollama_becomes_a_warning_per_service(
    ollama: RunningFakeOllama,
) -> None:
    async with AsyncExitStack() as stack:
        downstream = await _downstream(stack, ollama)
        await ollama.stop()
        warnings = await GpuHandover(downstream, timeout_s=5.0)()
    assert len(warnings) == 2
    assert all("could not unload" in w and "UNAVAILABLE" in w for w in warnings)
    assert {w.split(" service")[0].split()[-1] for w in warnings} == {"vision", "planner"}


async def test_a_service_that_is_down_becomes_a_warning(ollama: RunningFakeOllama) -> None:
    downstream = Downstream.connect(
        vision_address=NOWHERE,
        planner_address=NOWHERE,
        render_address=NOWHERE,
        max_message_bytes=1024 * 1024,
    )
    try:
        warnings = await GpuHandover(downstream, timeout_s=1.0)()
    finally:
        await downstream.close()
    assert len(warnings) == 2
    assert all("could not unload" in w for w in warnings)


async def test_a_model_server_that_cannot_unload_is_reported(ollama: RunningFakeOllama) -> None:
    async with AsyncExitStack() as stack:
        downstream = await _downstream(
            stack, ollama, llm_backend="openai", llm_url=f"{ollama.url}/v1"
        )
        (warning,) = await GpuHandover(downstream, timeout_s=5.0)()
    assert warning.startswith("the planner service's model stays in GPU memory")
    assert "no call to unload" in warning
