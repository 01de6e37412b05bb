"""Handing the GPU from Ollama to ComfyUI (single-GPU mode), against the Ollama stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.vram import OllamaEvictor
from services.common.ollama import ChatMessage, ChatRequest, OllamaClient
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings


@pytest.fixture
async def ollama() -> AsyncIterator[RunningFakeOllama]:
    async with run_fake_ollama(FakeOllamaSettings(), port=0) as running:
        yield running


@pytest.fixture
async def client(ollama: RunningFakeOllama) -> AsyncIterator[OllamaClient]:
    client = OllamaClient(ollama.url, timeout_s=10.0)
    yield client
    await client.aclose()


def _unload_requests(ollama: RunningFakeOllama) -> int:
    return sum(
        1
        for r in ollama.fake.requests_to("/api/chat")
        if isinstance(r.body, dict) and r.body.get("keep_alive") == 0
    )


async def test_loaded_models_leave_the_gpu(ollama: RunningFakeOllama, client: OllamaClient) -> None:
    await client.chat(
        ChatRequest(model="llava", messages=[ChatMessage(role="user", content="hi")]), timeout_s=5
    )
    assert ollama.fake.resident_models() == ["llava:latest"]
    warnings = await OllamaEvictor(client, timeout_s=5.0)()
    assert warnings == []
    assert ollama.fake.resident_models() == []


async def test_nothing_loaded_means_nothing_to_unload(
    ollama: RunningFakeOllama, client: OllamaClient
) -> None:
    assert await OllamaEvictor(client, timeout_s=5.0)() == []
    assert _unload_requests(ollama) == 0


async def test_unreachable_ollama_becomes_a_warning(
    ollama: RunningFakeOllama, client: OllamaClient
) -> None:
    await ollama.stop()
    (warning,) = await OllamaEvictor(client, timeout_s=1.0)()
    assert "could not unload" in warning
