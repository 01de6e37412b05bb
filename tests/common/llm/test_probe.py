"""ModelProbe against the Ollama stand-in: states, reasons, capabilities, logging.

The probe speaks only the chat-model protocol; a server that reports no capabilities is
covered with the OpenAI-compatible adapter in ``test_openai.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from services.common.llm import (
    ChatMessage,
    ChatRequest,
    ModelProbe,
    ModelServerHungError,
    ModelState,
    call_model_with_retries,
)
from services.common.llm.ollama import OllamaClient
from services.common.retry import RetryPolicy
from standins.ollama import FaultKind
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

LOGGER = "services.common.llm.probe"


@pytest.fixture
async def running() -> AsyncIterator[RunningFakeOllama]:
    """The stand-in with llava (vision) and gpt-oss:20b (thinking, tools) pulled."""
    async with run_fake_ollama(FakeOllamaSettings(), port=0) as stand_in:
        yield stand_in


@pytest.fixture
async def client(running: RunningFakeOllama) -> AsyncIterator[OllamaClient]:
    """An adapter on the stand-in, closed after the test."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield OllamaClient(running.url, client=http)


async def test_before_the_first_probe_nothing_is_known(client: OllamaClient) -> None:
    probe = ModelProbe(client, "gpt-oss:20b")
    assert probe.state is ModelState.UNKNOWN
    assert probe.reason == "not probed yet"
    assert probe.has_capability("thinking") is None
    assert probe.server_version == ""


async def test_without_a_required_capability_any_known_model_is_ready(
    client: OllamaClient,
) -> None:
    probe = ModelProbe(client, "gpt-oss:20b")
    assert await probe.check()
    assert probe.state is ModelState.READY
    assert probe.reason == "gpt-oss:20b is available (completion, tools, thinking)"
    assert probe.has_capability("thinking") is True
    assert probe.has_capability("vision") is False
    assert probe.server_version


async def test_a_model_with_the_required_capability_is_ready(client: OllamaClient) -> None:
    probe = ModelProbe(client, "llava", required_capability="vision")
    assert await probe.check()
    assert probe.state is ModelState.READY


async def test_a_model_without_the_required_capability_is_not_ready_and_says_why(
    running: RunningFakeOllama, client: OllamaClient
) -> None:
    probe = ModelProbe(
        client, "gpt-oss:20b", required_capability="vision", consequence="images are dropped"
    )
    assert not await probe.check()
    assert probe.state is ModelState.LACKS_CAPABILITY
    assert probe.reason == (
        "model 'gpt-oss:20b' lacks the vision capability (capabilities: completion, tools, "
        "thinking); images are dropped"
    )
    # Capabilities are known even though the model cannot be used.
    assert probe.has_capability("thinking") is True
    assert running.fake.requests_to("/api/version") == []


async def test_a_model_that_is_not_pulled_is_missing(client: OllamaClient) -> None:
    probe = ModelProbe(client, "llava:34b", required_capability="vision")
    assert not await probe.check()
    assert probe.state is ModelState.MODEL_MISSING
    assert "ollama pull llava:34b" in probe.reason
    assert probe.has_capability("vision") is None


async def test_ollama_down_is_told_apart_from_a_missing_model(
    running: RunningFakeOllama, client: OllamaClient
) -> None:
    await running.stop()
    probe = ModelProbe(client, "llava")
    assert not await probe.check()
    assert probe.state is ModelState.BACKEND_DOWN
    assert probe.reason.startswith("Ollama does not answer: ")


async def test_capabilities_are_kept_while_ollama_is_down(
    running: RunningFakeOllama, client: OllamaClient
) -> None:
    probe = ModelProbe(client, "gpt-oss:20b")
    assert await probe.check()
    await running.stop()
    assert not await probe.check()
    assert probe.state is ModelState.BACKEND_DOWN
    assert probe.has_capability("thinking") is True


async def test_the_server_version_is_read_once(
    running: RunningFakeOllama, client: OllamaClient
) -> None:
    probe = ModelProbe(client, "llava")
    for _ in range(3):
        assert await probe.check()
    assert len(running.fake.requests_to("/api/show")) == 3
    assert len(running.fake.requests_to("/api/version")) == 1


async def test_only_changes_of_state_are_logged_under_the_label(
    running: RunningFakeOllama, client: OllamaClient, caplog: pytest.LogCaptureFixture
) -> None:
    probe = ModelProbe(client, "gpt-oss:20b", label="text model")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        await probe.check()
        await probe.check()
        await running.stop()
        await probe.check()
    changes = [r for r in caplog.records if r.getMessage().startswith("text model ")]
    assert [(r.getMessage(), r.levelno) for r in changes] == [
        ("text model ready", logging.INFO),
        ("text model backend_down", logging.WARNING),
    ]
    assert changes[0].__dict__["model"] == "gpt-oss:20b"
    assert changes[0].__dict__["capabilities"] == ["completion", "tools", "thinking"]
    assert changes[1].__dict__["reason"] == probe.reason


async def ask_with_retries(
    client: OllamaClient, probe: ModelProbe, *, timeout_s: float, pause_s: float = 0.0
) -> str:
    """One question to llava through the retrying call (five attempts ``pause_s`` apart),
    watched by ``probe``."""
    return await call_model_with_retries(
        client,
        ChatRequest(model="llava", messages=(ChatMessage("user", "hello"),)),
        lambda reply: reply.content,
        policy=RetryPolicy(max_attempts=5, initial_backoff_s=pause_s, max_backoff_s=pause_s),
        deadline=time.monotonic() + timeout_s,
        call_timeout_s=timeout_s,
        logger=logging.getLogger(__name__),
        label="test model",
        probe=probe,
    )


async def test_a_call_in_flight_is_abandoned_as_soon_as_the_probe_finds_the_server_hung(
    running: RunningFakeOllama, client: OllamaClient
) -> None:
    # Long enough for the healthy answer first asked for, on a busy machine too.
    probe = ModelProbe(client, "llava", timeout_s=1.0)
    assert await probe.check()
    # The server hangs: every route holds its answer for a minute.
    running.fake.faults.add(
        kind=FaultKind.DELAY, delay_s=60.0, routes=("chat", "show", "tags", "version")
    )
    call = asyncio.create_task(ask_with_retries(client, probe, timeout_s=120.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert not await probe.check()
    assert probe.state is ModelState.BACKEND_DOWN
    with pytest.raises(ModelServerHungError, match=r"abandoned: .*does not answer"):
        await call
    # The probe's own timeout, then at once: no retry, no call timeout.
    assert time.monotonic() - started < 1.0 + 0.5
    assert len(running.fake.requests_to("/api/chat")) == 1


async def test_a_call_is_not_started_while_the_last_probe_found_the_server_hung(
    running: RunningFakeOllama, client: OllamaClient
) -> None:
    probe = ModelProbe(client, "llava", timeout_s=0.3)
    running.fake.faults.add(kind=FaultKind.DELAY, delay_s=60.0, routes=("show",))
    assert not await probe.check()
    with pytest.raises(ModelServerHungError, match="not asked"):
        await probe.unless_hung(lambda: asyncio.sleep(10))
    with pytest.raises(ModelServerHungError, match="not asked"):
        await ask_with_retries(client, probe, timeout_s=10.0)
    assert running.fake.requests_to("/api/chat") == []


async def test_a_server_refusing_connections_is_down_but_still_asked_so_a_restart_costs_nothing(
    running: RunningFakeOllama, client: OllamaClient
) -> None:
    probe = ModelProbe(client, "llava", timeout_s=0.3)
    # Refused until the probe has seen it: a timed reopening could race a slow probe.
    await running.refuse_connections()
    assert not await probe.check()
    assert probe.state is ModelState.BACKEND_DOWN
    # Refused calls fail at once and are retried; the server is back for a later attempt.
    call = asyncio.create_task(ask_with_retries(client, probe, timeout_s=10.0, pause_s=0.2))
    await asyncio.sleep(0.1)
    await running.accept_connections()
    assert await call


async def test_a_call_that_finishes_first_is_not_abandoned(client: OllamaClient) -> None:
    probe = ModelProbe(client, "llava", timeout_s=0.3)
    assert await probe.unless_hung(lambda: asyncio.sleep(0, result="answer")) == "answer"
