"""The Ollama adapter against the Ollama stand-in, plus the few cases only a mock can produce.

The stand-in speaks Ollama's protocol over a real socket (streams, status codes, faults);
``httpx.MockTransport`` is used only below the marked line, for replies the stand-in
never sends (a ``length`` stop with nothing generated, a non-JSON line, a 429...).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.common.llm import (
    ChatImage,
    ChatMessage,
    ChatRequest,
    ModelNotFoundError,
    ModelRequestError,
    ModelUnavailableError,
    Release,
    UnusableAnswerError,
    is_retryable,
)
from services.common.llm.ollama import (
    OllamaChatRequest,
    OllamaClient,
    OllamaMessage,
    to_ollama,
)
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

SCHEMA = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}},
    "required": ["greeting"],
}


@pytest.fixture
async def ollama() -> AsyncIterator[RunningFakeOllama]:
    async with run_fake_ollama(FakeOllamaSettings(), port=0) as running:
        yield running


@pytest.fixture
async def client(ollama: RunningFakeOllama) -> AsyncIterator[OllamaClient]:
    adapter = OllamaClient(ollama.url, timeout_s=10.0)
    yield adapter
    await adapter.aclose()


def _say_hi(model: str = "llava", **fields: object) -> OllamaChatRequest:
    return OllamaChatRequest.model_validate(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Greet me as JSON."}],
            "format": SCHEMA,
            **fields,
        }
    )


# --------------------------------------------------------------------- the stand-in


async def test_chat_joins_the_streamed_pieces_into_the_schema_json(client: OllamaClient) -> None:
    reply = await client.api_chat(_say_hi())
    assert json.loads(reply.content)["greeting"]
    assert reply.done and reply.done_reason == "stop"
    assert reply.eval_count and reply.total_duration


async def test_a_streamed_and_an_unstreamed_reply_are_the_same(client: OllamaClient) -> None:
    streamed = await client.api_chat(_say_hi("gpt-oss:20b", think="low"))
    whole = await client.api_chat(_say_hi("gpt-oss:20b", think="low", stream=False))
    assert streamed.content == whole.content
    assert streamed.thinking and streamed.thinking == whole.thinking


async def test_an_unknown_model_says_which_model_to_pull_and_is_not_retryable(
    client: OllamaClient,
) -> None:
    with pytest.raises(ModelNotFoundError, match=r"ollama pull llava:34b") as caught:
        await client.api_chat(_say_hi("llava:34b"))
    assert caught.value.model == "llava:34b" and caught.value.status_code == 404
    assert not is_retryable(caught.value)


@pytest.mark.parametrize(
    ("fields", "text"),
    [({"think": True}, "does not support thinking"), ({"keep_alive": "10x"}, "unknown unit")],
)
async def test_a_request_ollama_refuses_is_a_bad_request(
    client: OllamaClient, fields: dict[str, object], text: str
) -> None:
    with pytest.raises(ModelRequestError, match=text) as caught:
        await client.api_chat(_say_hi("llava", **fields))
    assert caught.value.status_code == 400 and not is_retryable(caught.value)


async def test_an_error_line_inside_a_200_stream_is_a_response_error(
    client: OllamaClient, ollama: RunningFakeOllama
) -> None:
    ollama.fake.faults.add(kind="stream_error", after_lines=2, times=1)
    with pytest.raises(UnusableAnswerError, match="unexpectedly stopped") as caught:
        await client.api_chat(_say_hi())
    assert is_retryable(caught.value)


async def test_a_stream_cut_before_its_done_line_is_unavailable(
    client: OllamaClient, ollama: RunningFakeOllama
) -> None:
    ollama.fake.faults.add(kind="truncated_stream", after_lines=1, times=1)
    with pytest.raises(ModelUnavailableError):
        await client.api_chat(_say_hi())


async def test_ping_is_false_when_ollama_refuses_connections(ollama: RunningFakeOllama) -> None:
    # Refusals, server errors and slow replies on every adapter: test_transport.py.
    await ollama.stop()
    adapter = OllamaClient(ollama.url)
    try:
        assert not await adapter.ping()
    finally:
        await adapter.aclose()


async def test_show_lists_the_capabilities(client: OllamaClient) -> None:
    assert (await client.show("llava")).has_capability("vision")
    reasoning = await client.show("gpt-oss:20b")
    assert reasoning.has_capability("thinking") and not reasoning.has_capability("vision")
    with pytest.raises(ModelNotFoundError):
        await client.show("nope")


async def test_version_tags_and_ping_describe_the_server(client: OllamaClient) -> None:
    assert await client.version() == "0.12.6"
    assert {m.name for m in await client.tags()} == {"llava:latest", "gpt-oss:20b"}
    assert await client.ping()


async def test_preload_loads_without_generating(
    client: OllamaClient, ollama: RunningFakeOllama
) -> None:
    reply = await client.preload("llava", keep_alive="1m", options={"num_ctx": 4096})
    assert reply.done_reason == "load"
    assert [m.name for m in await client.ps()] == ["llava:latest"]
    assert ollama.fake.load_count == 1


async def test_unload_then_wait_unloaded_until_ps_no_longer_lists_it(
    client: OllamaClient,
) -> None:
    await client.api_chat(_say_hi())
    await client.unload("llava")
    assert await client.wait_unloaded(["llava"], timeout_s=5.0, poll_s=0.01)
    assert await client.ps() == []


async def test_wait_unloaded_gives_up_at_its_timeout(client: OllamaClient) -> None:
    await client.preload("llava", keep_alive="5m")
    assert not await client.wait_unloaded(["llava"], timeout_s=0.05, poll_s=0.01)


# ------------------------------------------------------- the chat-model protocol

PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0g"
    "AAAABJRU5ErkJggg=="
)


def _question(**fields: Any) -> ChatRequest:
    values: dict[str, Any] = {
        "model": "llava",
        "messages": (
            ChatMessage("system", "Answer as JSON."),
            ChatMessage("user", "Greet me.", images=(ChatImage(PIXEL, "image/png"),)),
        ),
        "json_schema": SCHEMA,
        "temperature": 0.1,
        "seed": 7,
        "max_tokens": 256,
        "context_tokens": 4096,
        "keep_alive": "3m",
        **fields,
    }
    return ChatRequest(**values)


async def test_a_protocol_request_reaches_ollama_as_its_api_chat_body(
    client: OllamaClient, ollama: RunningFakeOllama
) -> None:
    reply = await client.chat(_question())
    assert json.loads(reply.content)["greeting"]
    assert reply.finish_reason == "stop" and reply.completion_tokens
    assert reply.timings["total_ms"] is not None
    (sent,) = ollama.fake.requests_to("/api/chat")
    body = sent.body
    assert body["format"] == SCHEMA
    assert body["options"] == {"num_ctx": 4096, "num_predict": 256, "temperature": 0.1, "seed": 7}
    assert body["keep_alive"] == "3m" and "think" not in body
    assert body["messages"][1]["images"] == [PIXEL]
    assert "images" not in body["messages"][0]


async def test_the_reasoning_of_a_thinking_model_comes_back_apart(client: OllamaClient) -> None:
    reply = await client.chat(_question(model="gpt-oss:20b", think="low", messages=_text_only()))
    assert reply.reasoning and json.loads(reply.content)


def _text_only() -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", "Greet me as JSON."),)


def test_unset_options_are_left_out_of_the_body() -> None:
    body = to_ollama(ChatRequest(model="llava", messages=_text_only())).to_json()
    assert body == {
        "model": "llava",
        "messages": [{"role": "user", "content": "Greet me as JSON."}],
        "options": {},
        "stream": True,
    }


async def test_inspect_reads_the_capabilities_and_names_a_missing_model(
    client: OllamaClient,
) -> None:
    info = await client.inspect("llava", timeout_s=5.0)
    assert info.has_capability("vision") is True
    assert (await client.inspect("gpt-oss:20b", timeout_s=5.0)).has_capability("vision") is False
    with pytest.raises(ModelNotFoundError) as caught:
        await client.inspect("llava:34b", timeout_s=5.0)
    assert caught.value.remedy == "run `ollama pull llava:34b` on the Ollama host"
    assert caught.value.backend == "ollama"


async def test_release_unloads_a_loaded_model_and_waits_until_it_is_gone(
    client: OllamaClient, ollama: RunningFakeOllama
) -> None:
    await client.chat(_question())
    assert await client.release("llava", timeout_s=5.0) == Release(released=("llava",))
    assert ollama.fake.resident_models() == []


async def test_release_of_a_model_that_is_not_loaded_sends_no_unload(
    client: OllamaClient, ollama: RunningFakeOllama
) -> None:
    await client.chat(_question(model="gpt-oss:20b", messages=_text_only()))
    assert await client.release("llava", timeout_s=5.0) == Release()
    assert ollama.fake.resident_models() == ["gpt-oss:20b"]
    assert all(r.body.get("keep_alive") != 0 for r in ollama.fake.requests_to("/api/chat"))


async def test_release_reports_a_model_still_loaded_at_the_timeout() -> None:
    async with run_fake_ollama(FakeOllamaSettings(unload_delay_s=5.0), port=0) as slow:
        adapter = OllamaClient(slow.url)
        try:
            await adapter.chat(_question())
            release = await adapter.release("llava", timeout_s=0.3)
        finally:
            await adapter.aclose()
    assert release == Release(still_loaded=("llava",))


async def test_release_of_an_unreachable_ollama_is_unavailable(ollama: RunningFakeOllama) -> None:
    await ollama.stop()
    adapter = OllamaClient(ollama.url)
    try:
        with pytest.raises(ModelUnavailableError):
            await adapter.release("llava", timeout_s=1.0)
    finally:
        await adapter.aclose()


# --------------------------------------------------------- httpx.MockTransport only

URL = "http://ollama.test:11434"


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> OllamaClient:
    return OllamaClient(URL, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def _ndjson(*lines: dict[str, object]) -> httpx.Response:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    return httpx.Response(200, text=body, headers={"content-type": "application/x-ndjson"})


def _ask() -> OllamaChatRequest:
    return OllamaChatRequest(model="llava", messages=[OllamaMessage(role="user", content="hi")])


async def test_length_stop_with_empty_content_is_a_retryable_response_error() -> None:
    client = _client(
        lambda _: _ndjson(
            {"message": {"role": "assistant", "content": "", "thinking": "hmm"}, "done": False},
            {
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "length",
            },
        )
    )
    with pytest.raises(UnusableAnswerError, match="token limit") as caught:
        await client.api_chat(_ask())
    assert is_retryable(caught.value)


async def test_a_stream_line_that_is_not_json_is_a_response_error() -> None:
    client = _client(
        lambda _: httpx.Response(200, text='{"message":{"role":"assistant","content":"a"}}\n<html>')
    )
    with pytest.raises(UnusableAnswerError, match="not JSON"):
        await client.api_chat(_ask())


async def test_a_stream_that_ends_without_its_done_line_is_unavailable() -> None:
    client = _client(
        lambda _: _ndjson({"message": {"role": "assistant", "content": "{"}, "done": False})
    )
    with pytest.raises(ModelUnavailableError, match="before its done line"):
        await client.api_chat(_ask())


async def test_a_read_error_mid_stream_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer", request=request)

    with pytest.raises(ModelUnavailableError, match="broke off"):
        await _client(handler).api_chat(_ask())


async def test_a_429_is_retryable() -> None:
    client = _client(lambda _: httpx.Response(429, json={"error": "slow down"}))
    with pytest.raises(ModelUnavailableError, match="slow down") as caught:
        await client.api_chat(_ask())
    assert caught.value.status_code == 429


async def test_a_bare_number_keep_alive_is_sent_as_seconds() -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return _ndjson({"message": {"role": "assistant", "content": "ok"}, "done": True})

    # Settings read from the environment are strings; Ollama refuses "30" (no unit).
    await _client(handler).api_chat(
        OllamaChatRequest(model="llava", messages=[OllamaMessage(role="user")], keep_alive="30")
    )
    assert bodies[0]["keep_alive"] == 30


def test_an_image_with_a_data_uri_prefix_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="data: URI"):
        OllamaMessage(role="user", content="x", images=["data:image/png;base64,iVBORw0KGgo="])


async def test_aclose_leaves_a_client_it_was_given_open() -> None:
    given = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    await OllamaClient(URL, client=given).aclose()
    assert not given.is_closed
    await given.aclose()
