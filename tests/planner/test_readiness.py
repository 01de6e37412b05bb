"""The text model probe behind the health status."""

from __future__ import annotations

from services.common.ollama import OllamaClient
from services.fake_ollama.server import RunningFakeOllama, run_fake_ollama
from services.fake_ollama.settings import FakeOllamaSettings
from services.planner.readiness import ModelState, TextModelProbe


async def test_ready_when_ollama_knows_the_model(ollama: RunningFakeOllama) -> None:
    client = OllamaClient(ollama.url)
    probe = TextModelProbe(client, "gpt-oss:20b")
    try:
        assert await probe.check()
    finally:
        await client.aclose()
    assert probe.state is ModelState.READY
    assert probe.thinking is True
    assert probe.server_version


async def test_not_ready_when_the_model_is_not_pulled() -> None:
    async with run_fake_ollama(FakeOllamaSettings(models=["llava:latest"]), port=0) as running:
        client = OllamaClient(running.url)
        probe = TextModelProbe(client, "gpt-oss:20b")
        try:
            assert not await probe.check()
        finally:
            await client.aclose()
    assert probe.state is ModelState.MODEL_MISSING
    assert "ollama pull gpt-oss:20b" in probe.reason


async def test_not_ready_when_ollama_does_not_answer(ollama: RunningFakeOllama) -> None:
    await ollama.stop()
    client = OllamaClient(ollama.url)
    probe = TextModelProbe(client, "gpt-oss:20b")
    try:
        assert not await probe.check()
    finally:
        await client.aclose()
    assert probe.state is ModelState.OLLAMA_DOWN
