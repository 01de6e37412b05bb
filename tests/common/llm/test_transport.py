"""What every HTTP adapter does the same way: transport failures, server errors, budgets.

Each test runs on both adapters against the stand-in (Ollama's ``/api`` and its
OpenAI-compatible ``/v1``), through the chat-model protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.common.llm import (
    Backend,
    ChatMessage,
    ChatModel,
    ChatRequest,
    ModelUnavailableError,
    is_retryable,
)
from services.common.llm.ollama import OllamaClient
from services.common.llm.openai import OpenAICompatibleClient
from tests.common.llm.backends import BACKENDS, LanguageModelStandIn, serve_stand_in

QUESTION = ChatRequest(model="llava", messages=(ChatMessage("user", "Greet me."),))


@pytest.fixture(params=BACKENDS)
async def stand_in(request: pytest.FixtureRequest) -> AsyncIterator[LanguageModelStandIn]:
    backend: Backend = request.param
    async with serve_stand_in(backend) as running:
        yield running


@pytest.fixture
async def client(stand_in: LanguageModelStandIn) -> AsyncIterator[ChatModel]:
    adapter = _adapter(stand_in)
    yield adapter
    await adapter.aclose()


def _adapter(stand_in: LanguageModelStandIn) -> ChatModel:
    if stand_in.backend == "openai":
        return OpenAICompatibleClient(stand_in.url, timeout_s=10.0)
    return OllamaClient(stand_in.url, timeout_s=10.0)


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_error_is_retryable_unavailability(
    client: ChatModel, stand_in: LanguageModelStandIn, status: int
) -> None:
    stand_in.fake.faults.add(kind="error", status=status, times=1)
    with pytest.raises(ModelUnavailableError) as caught:
        await client.chat(QUESTION)
    assert caught.value.status_code == status and is_retryable(caught.value)
    assert (await client.chat(QUESTION)).content


async def test_a_refused_connection_is_unavailable(stand_in: LanguageModelStandIn) -> None:
    await stand_in.stop()
    adapter = _adapter(stand_in)
    try:
        with pytest.raises(ModelUnavailableError, match="cannot connect") as caught:
            await adapter.chat(QUESTION)
    finally:
        await adapter.aclose()
    assert is_retryable(caught.value)


async def test_a_reply_slower_than_the_call_budget_times_out(
    client: ChatModel, stand_in: LanguageModelStandIn
) -> None:
    stand_in.fake.faults.add(kind="delay", delay_s=5.0, times=1)
    with pytest.raises(ModelUnavailableError, match="timed out"):
        await client.chat(QUESTION, timeout_s=0.2)


async def test_no_time_left_fails_before_sending(
    client: ChatModel, stand_in: LanguageModelStandIn
) -> None:
    with pytest.raises(ModelUnavailableError, match="no time left"):
        await client.chat(QUESTION, timeout_s=0.0)
    assert stand_in.fake.requests_to(stand_in.chat_path) == []
