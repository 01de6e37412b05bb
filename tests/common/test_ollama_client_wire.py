"""OllamaClient cases the Ollama stand-in cannot produce, served by httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from services.common.ollama import (
    ChatMessage,
    ChatRequest,
    OllamaClient,
    OllamaResponseError,
    OllamaUnavailableError,
    is_retryable,
)

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
