"""The text model probe behind the health status and the ``think`` choice.

The probe itself (states, reasons, logging) is tested in ``tests/common``; these tests
pin what the planner asks of it: any model Ollama knows is ready, thinking or not.
"""

from __future__ import annotations

import pytest

from services.common.llm import ModelState
from services.common.llm.ollama import OllamaClient
from services.planner.readiness import text_model_probe
from standins.ollama.server import RunningFakeOllama

# Capabilities come from Ollama's /api/show; an OpenAI-compatible server reports none
# (its probe is tested in tests/common/llm/test_openai.py).
pytestmark = pytest.mark.llm_backends("ollama")


async def test_ready_when_ollama_knows_the_model(ollama: RunningFakeOllama) -> None:
    client = OllamaClient(ollama.url)
    probe = text_model_probe(client, "gpt-oss:20b")
    try:
        assert probe.has_capability("thinking") is None
        assert await probe.check()
    finally:
        await client.aclose()
    assert probe.state is ModelState.READY
    assert probe.has_capability("thinking") is True
    assert probe.server_version


async def test_a_model_without_thinking_is_ready_too(ollama: RunningFakeOllama) -> None:
    client = OllamaClient(ollama.url)
    probe = text_model_probe(client, "llava")
    try:
        assert await probe.check()
    finally:
        await client.aclose()
    assert probe.state is ModelState.READY
    assert probe.has_capability("thinking") is False


async def test_not_ready_when_the_model_is_not_pulled(ollama: RunningFakeOllama) -> None:
    client = OllamaClient(ollama.url)
    probe = text_model_probe(client, "gpt-oss:120b")
    try:
        assert not await probe.check()
    finally:
        await client.aclose()
    assert probe.state is ModelState.MODEL_MISSING
    assert "ollama pull gpt-oss:120b" in probe.reason
