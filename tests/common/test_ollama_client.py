"""OllamaClient against the Ollama stand-in, plus the few cases only a mock can produce.

The stand-in speaks Ollama's protocol over a real socket (streams, status codes, faults);
``httpx.MockTransport`` is used only below the marked line, for replies the stand-in
never sends (a ``length`` stop with nothing generated, a non-JSON line, a 429...).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from services.common.ollama import (
    ChatMessage,
    ChatRequest,
    OllamaBadRequestError,
    OllamaClient,
    OllamaModelNotFoundError,
    OllamaResponseError,
    OllamaUnavailableError,
    is_retryable,
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


def _say_hi(model: str = "llava", **fields: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Greet me as JSON."}],
            "format": SCHEMA,
            **fields,
        }
    )


# --------------------------------------------------------------------- the stand-in


async def test_chat_joins_the_streamed_pieces_into_the_schema_json(client: OllamaClient) -> None:
    reply = await client.chat(_say_hi())
    assert json.loads(reply.content)["greeting"]
    assert reply.done and reply.done_reason == "stop"
    assert reply.eval_count and reply.total_duration


async def test_a_streamed_and_an_unstreamed_reply_are_the_same(client: OllamaClient) -> None:
    streamed = await client.chat(_say_hi("gpt-oss:20b", think="low"))
    whole = await client.chat(_say_hi("gpt-oss:20b", think="low", stream=False))
    assert streamed.content == whole.content
    assert streamed.thinking and streamed.thinking == whole.thinking


async def test_an_unknown_model_says_which_model_to_pull_and_is_not_retryable(
    client: OllamaClient,
) -> None:
    with pytest.raises(OllamaModelNotFoundError, match=r"ollama pull llava:34b") as caught:
        await client.chat(_say_hi("llava:34b"))
    assert caught.value.model == "llava:34b" and caught.value.status_code == 404
    assert not is_retryable(caught.value)


@pytest.mark.parametrize(
    ("fields", "text"),
    [({"think": True}, "does not support thinking"), ({"keep_alive": "10x"}, "unknown unit")],
)
async def test_a_request_ollama_refuses_is_a_bad_request(
    client: OllamaClient, fields: dict[str, object], text: str
) -> None:
    with pytest.raises(OllamaBadRequestError, match=text) as caught:
        await client.chat(_say_hi("llava", **fields))
    assert caught.value.status_code == 400 and not is_retryable(caught.value)


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_error_is_retryable_unavailability(
    client: OllamaClient, ollama: RunningFakeOllama, status: int
) -> None:
    ollama.fake.faults.add(kind="error", status=status, times=1)
    with pytest.raises(OllamaUnavailableError) as caught:
        await client.chat(_say_hi())
    assert caught.value.status_code == status and is_retryable(caught.value)
    assert (await client.chat(_say_hi())).content


async def test_an_error_line_inside_a_200_stream_is_a_response_error(
    client: OllamaClient, ollama: RunningFakeOllama
) -> None:
    ollama.fake.faults.add(kind="stream_error", after_lines=2, times=1)
    with pytest.raises(OllamaResponseError, match="unexpectedly stopped") as caught:
        await client.chat(_say_hi())
    assert is_retryable(caught.value)


async def test_a_stream_cut_before_its_done_line_is_unavailable(
    client: OllamaClient, ollama: RunningFakeOllama
) -> None:
    ollama.fake.faults.add(kind="truncated_stream", after_lines=1, times=1)
    with pytest.raises(OllamaUnavailableError):
        await client.chat(_say_hi())


async def test_a_refused_connection_is_unavailable(ollama: RunningFakeOllama) -> None:
    await ollama.stop()
    adapter = OllamaClient(ollama.url)
    try:
        with pytest.raises(OllamaUnavailableError, match="cannot connect"):
            await adapter.chat(_say_hi())
        assert not await adapter.ping()
    finally:
        await adapter.aclose()


async def test_a_reply_slower_than_the_call_budget_times_out(
    client: OllamaClient, ollama: RunningFakeOllama
) -> None:
    ollama.fake.faults.add(kind="delay", delay_s=5.0, times=1)
    with pytest.raises(OllamaUnavailableError, match="timed out"):
        await client.chat(_say_hi(), timeout_s=0.2)


async def test_show_lists_the_capabilities(client: OllamaClient) -> None:
    assert (await client.show("llava")).has_capability("vision")
    reasoning = await client.show("gpt-oss:20b")
    assert reasoning.has_capability("thinking") and not reasoning.has_capability("vision")
    with pytest.raises(OllamaModelNotFoundError):
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
    await client.chat(_say_hi())
    await client.unload("llava")
    assert await client.wait_unloaded(["llava"], timeout_s=5.0, poll_s=0.01)
    assert await client.ps() == []


async def test_wait_unloaded_gives_up_at_its_timeout(client: OllamaClient) -> None:
    await client.preload("llava", keep_alive="5m")
    assert not await client.wait_unloaded(["llava"], timeout_s=0.05, poll_s=0.01)


# --------------------------------------------------------- httpx.MockTransport only

URL = "http://ollama.test:11434"


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> OllamaClient:
    return OllamaClient(URL, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def _ndjson(*lines: dict[str, object]) -> httpx.Response:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    return httpx.Response(200, text=body, headers={"content-type": "application/x-ndjson"})


def _ask() -> ChatRequest:
    return ChatRequest(model="llava", messages=[ChatMessage(role="user", content="hi")])


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
    with pytest.raises(OllamaResponseError, match="token limit") as caught:
        await client.chat(_ask())
    assert is_retryable(caught.value)


async def test_a_stream_line_that_is_not_json_is_a_response_error() -> None:
    client = _client(
        lambda _: httpx.Response(200, text='{"message":{"role":"assistant","content":"a"}}\n<html>')
    )
    with pytest.raises(OllamaResponseError, match="not JSON"):
        await client.chat(_ask())


async def test_a_stream_that_ends_without_its_done_line_is_unavailable() -> None:
    client = _client(
        lambda _: _ndjson({"message": {"role": "assistant", "content": "{"}, "done": False})
    )
    with pytest.raises(OllamaUnavailableError, match="before its done line"):
        await client.chat(_ask())


async def test_a_read_error_mid_stream_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer", request=request)

    with pytest.raises(OllamaUnavailableError, match="broke off"):
        await _client(handler).chat(_ask())


async def test_a_429_is_retryable() -> None:
    client = _client(lambda _: httpx.Response(429, json={"error": "slow down"}))
    with pytest.raises(OllamaUnavailableError, match="slow down") as caught:
        await client.chat(_ask())
    assert caught.value.status_code == 429


async def test_a_bare_number_keep_alive_is_sent_as_seconds() -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return _ndjson({"message": {"role": "assistant", "content": "ok"}, "done": True})

    # Settings read from the environment are strings; Ollama refuses "30" (no unit).
    await _client(handler).chat(
        ChatRequest(model="llava", messages=[ChatMessage(role="user")], keep_alive="30")
    )
    assert bodies[0]["keep_alive"] == 30


def test_an_image_with_a_data_uri_prefix_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="data: URI"):
        ChatMessage(role="user", content="x", images=["data:image/png;base64,iVBORw0KGgo="])


def test_for_log_replaces_image_bytes_by_their_size() -> None:
    request = ChatRequest(
        model="llava",
        messages=[ChatMessage(role="user", content="look", images=["QUJD" * 100])],
    )
    logged = request.for_log()
    assert logged["messages"][0]["images"] == ["<400 base64 chars>"]
    assert request.to_json()["messages"][0]["images"] == ["QUJD" * 100]


async def test_aclose_leaves_a_client_it_was_given_open() -> None:
    given = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    await OllamaClient(URL, client=given).aclose()
    assert not given.is_closed
    await given.aclose()
