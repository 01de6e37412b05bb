"""The OpenAI-compatible adapter against the stand-in's ``/v1``, with the official client as peer.

The stand-in serves ``/v1/chat/completions`` and ``/v1/models`` as Ollama does (a
translation in front of its own chat path), so faults and the request log are shared.
The official ``openai`` client sends the same request as the adapter and the two bodies
are compared. ``httpx.MockTransport`` is used only below the marked line, for what other
servers send (llama.cpp's ``reasoning_content`` and 503 while loading, LM Studio's string
errors, vLLM's 401, a refusal, a ``length`` stop with nothing generated).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from PIL import Image
from pydantic import BaseModel

from services.common.llm import (
    ChatImage,
    ChatMessage,
    ChatRequest,
    ModelNotFoundError,
    ModelProbe,
    ModelRequestError,
    ModelState,
    ModelUnavailableError,
    UnusableAnswerError,
    is_retryable,
)
from services.common.llm.openai import OpenAICompatibleClient, to_openai
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}},
    "required": ["greeting"],
}


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


JPEG = _jpeg()


@pytest.fixture
async def ollama() -> AsyncIterator[RunningFakeOllama]:
    async with run_fake_ollama(FakeOllamaSettings(), port=0) as running:
        yield running


@pytest.fixture
async def client(ollama: RunningFakeOllama) -> AsyncIterator[OpenAICompatibleClient]:
    adapter = OpenAICompatibleClient(f"{ollama.url}/v1", timeout_s=10.0)
    yield adapter
    await adapter.aclose()


def _question(**fields: Any) -> ChatRequest:
    values: dict[str, Any] = {
        "model": "llava",
        "messages": (
            ChatMessage("system", "Answer as JSON."),
            ChatMessage(
                "user",
                "Greet me.",
                images=(ChatImage(base64.b64encode(JPEG).decode(), "image/jpeg"),),
            ),
        ),
        "json_schema": SCHEMA,
        "schema_name": "greeting",
        "temperature": 0.1,
        "seed": 7,
        "max_tokens": 256,
        "context_tokens": 4096,
        "keep_alive": "3m",
        **fields,
    }
    return ChatRequest(**values)


def _text_only() -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", "Greet me as JSON."),)


def _completions(ollama: RunningFakeOllama) -> list[dict[str, Any]]:
    return [r.body for r in ollama.fake.requests_to("/v1/chat/completions")]


# --------------------------------------------------------------------- the stand-in


async def test_a_protocol_request_becomes_a_chat_completion_with_a_schema_and_an_image(
    client: OpenAICompatibleClient, ollama: RunningFakeOllama
) -> None:
    reply = await client.chat(_question())
    assert json.loads(reply.content)["greeting"]
    assert reply.finish_reason == "stop" and reply.model == "llava"
    assert reply.completion_tokens and reply.prompt_tokens is not None
    (body,) = _completions(ollama)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "greeting", "schema": SCHEMA, "strict": True},
    }
    assert body["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()},
    }
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.1, 7, 256)
    # Fixed when an OpenAI-compatible server starts: never sent.
    assert not {"keep_alive", "options", "num_ctx", "format", "think"} & set(body)
    assert ollama.fake.requests_to("/v1/chat/completions")[0].images() == [JPEG]
    assert ollama.fake.requests_to("/api/chat") == []


async def test_the_official_client_sends_the_same_body_and_gets_the_same_answer(
    client: OpenAICompatibleClient, ollama: RunningFakeOllama
) -> None:
    ours = await client.chat(_question())
    # The same question written with the official client's own types, independently.
    image_url = "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Answer as JSON."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Greet me."},
                {"type": "image_url", "image_url": {"url": image_url}},
            ],
        },
    ]
    schema_format: ResponseFormatJSONSchema = {
        "type": "json_schema",
        "json_schema": {"name": "greeting", "schema": SCHEMA, "strict": True},
    }
    async with openai.AsyncOpenAI(
        base_url=f"{ollama.url}/v1", api_key="local", max_retries=0, timeout=10.0
    ) as peer:
        theirs = await peer.chat.completions.create(
            model="llava",
            messages=messages,
            response_format=schema_format,
            temperature=0.1,
            seed=7,
            max_tokens=256,
            stream=False,
        )
    mine, official = _completions(ollama)
    assert mine == official
    assert theirs.choices[0].message.content == ours.content
    assert theirs.choices[0].finish_reason == ours.finish_reason


async def test_our_schema_format_has_the_shape_the_official_parse_helper_builds(
    client: OpenAICompatibleClient, ollama: RunningFakeOllama
) -> None:
    class Greeting(BaseModel):
        greeting: str

    async with openai.AsyncOpenAI(
        base_url=f"{ollama.url}/v1", api_key="local", max_retries=0, timeout=10.0
    ) as peer:
        parsed = await peer.chat.completions.parse(
            model="llava", messages=[{"role": "user", "content": "Hi"}], response_format=Greeting
        )
    assert parsed.choices[0].message.parsed is not None
    await client.chat(_question(messages=_text_only(), json_schema=Greeting.model_json_schema()))
    official, mine = _completions(ollama)
    assert official["response_format"].keys() == mine["response_format"].keys()
    assert (
        official["response_format"]["json_schema"].keys()
        == mine["response_format"]["json_schema"].keys()
    )
    assert mine["response_format"]["type"] == official["response_format"]["type"]


async def test_a_thinking_model_answers_with_its_reasoning_apart(
    client: OpenAICompatibleClient, ollama: RunningFakeOllama
) -> None:
    reply = await client.chat(_question(model="gpt-oss:20b", messages=_text_only(), think="low"))
    assert reply.reasoning and json.loads(reply.content)
    assert _completions(ollama)[0]["reasoning_effort"] == "low"


async def test_a_model_the_server_lacks_names_the_model_and_is_not_retryable(
    client: OpenAICompatibleClient,
) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        await client.chat(_question(model="llava:34b"))
    error = caught.value
    assert (error.model, error.backend, error.status_code) == ("llava:34b", "openai", 404)
    assert "llava:34b" in error.message and not is_retryable(error)


async def test_an_image_the_server_cannot_read_is_a_refused_request(
    client: OpenAICompatibleClient,
) -> None:
    broken = (ChatMessage("user", "Look.", images=(ChatImage("not base64!", "image/jpeg"),)),)
    with pytest.raises(ModelRequestError, match="invalid image input") as caught:
        await client.chat(_question(messages=broken))
    assert caught.value.status_code == 400 and not is_retryable(caught.value)


async def test_a_url_without_the_api_root_is_explained(ollama: RunningFakeOllama) -> None:
    adapter = OpenAICompatibleClient(ollama.url)  # /v1 forgotten
    try:
        with pytest.raises(ModelRequestError, match="ending in /v1"):
            await adapter.chat(_question())
    finally:
        await adapter.aclose()


async def test_inspect_finds_a_served_model_by_its_ollama_name(
    client: OpenAICompatibleClient,
) -> None:
    info = await client.inspect("llava", timeout_s=5.0)
    assert info.capabilities is None and info.has_capability("vision") is None
    assert (await client.inspect("gpt-oss:20b", timeout_s=5.0)).model == "gpt-oss:20b"
    with pytest.raises(ModelNotFoundError, match=r"llava:latest, gpt-oss:20b"):
        await client.inspect("qwen2.5-vl-7b", timeout_s=5.0)


async def test_the_probe_takes_a_listed_model_as_ready_and_says_vision_is_unverified(
    client: OpenAICompatibleClient, ollama: RunningFakeOllama
) -> None:
    probe = ModelProbe(client, "llava", required_capability="vision", label="vision model")
    assert await probe.check()
    assert probe.state is ModelState.READY
    assert "does not report whether it has vision" in probe.reason
    assert probe.has_capability("thinking") is None
    missing = ModelProbe(client, "qwen2.5-vl-7b")
    assert not await missing.check() and missing.state is ModelState.MODEL_MISSING
    await ollama.stop()
    down = ModelProbe(client, "llava")
    assert not await down.check()
    assert down.state is ModelState.BACKEND_DOWN
    assert down.reason.startswith("the OpenAI-compatible server does not answer: ")


def test_unset_fields_are_left_out_and_text_stays_a_plain_string() -> None:
    body = to_openai(ChatRequest(model="m", messages=_text_only()))
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "Greet me as JSON."}],
        "stream": False,
    }


# --------------------------------------------------------- httpx.MockTransport only

URL = "http://llm.test:8000/v1"
Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, **kwargs: Any) -> OpenAICompatibleClient:
    transport = httpx.MockTransport(handler)
    return OpenAICompatibleClient(URL, client=httpx.AsyncClient(transport=transport), **kwargs)


def _completion(message: dict[str, Any], finish_reason: str = "stop") -> httpx.Response:
    choice = {
        "index": 0,
        "message": {"role": "assistant", **message},
        "finish_reason": finish_reason,
    }
    return httpx.Response(200, json={"id": "chatcmpl-1", "model": "m", "choices": [choice]})


async def _ask(handler: Handler, **kwargs: Any) -> Any:
    return await _client(handler, **kwargs).chat(ChatRequest(model="m", messages=_text_only()))


async def test_llama_cpp_reasoning_content_is_read_as_the_reasoning() -> None:
    reply = await _ask(lambda _: _completion({"content": "{}", "reasoning_content": "hmm"}))
    assert (reply.content, reply.reasoning) == ("{}", "hmm")


async def test_the_api_key_is_sent_as_a_bearer_token_to_every_call() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": [{"id": "m"}]})
        return _completion({"content": "{}"})

    client = _client(handler, api_key="sk-local")
    await client.chat(ChatRequest(model="m", messages=_text_only()))
    await client.inspect("m", timeout_s=1.0)
    assert seen == ["Bearer sk-local", "Bearer sk-local"]
    await _ask(handler)
    assert seen[-1] is None


async def test_length_stop_with_nothing_generated_is_a_retryable_unusable_answer() -> None:
    with pytest.raises(UnusableAnswerError, match="token limit") as caught:
        await _ask(lambda _: _completion({"content": None, "reasoning": "…"}, "length"))
    assert is_retryable(caught.value)


async def test_a_refusal_is_unusable_and_not_retried() -> None:
    with pytest.raises(UnusableAnswerError, match="refused: no") as caught:
        await _ask(lambda _: _completion({"content": None, "refusal": "no"}))
    assert not is_retryable(caught.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}),
        (429, {"error": "slow down"}),
        (408, {"object": "error", "message": "timeout", "type": "x", "code": 408}),
    ],
)
async def test_loading_busy_and_rate_limits_are_unavailable(
    status: int, body: dict[str, Any]
) -> None:
    with pytest.raises(ModelUnavailableError) as caught:
        await _ask(lambda _: httpx.Response(status, json=body))
    assert caught.value.status_code == status


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_not_retried(status: int) -> None:
    with pytest.raises(ModelRequestError, match="check the API key"):
        await _ask(lambda _: httpx.Response(status, json={"error": "Unauthorized"}))


async def test_lm_studio_string_errors_keep_their_text() -> None:
    body = {"error": "'response_format.type' must be 'json_schema' or 'text'"}
    with pytest.raises(ModelRequestError, match="must be 'json_schema'"):
        await _ask(lambda _: httpx.Response(400, json=body))


async def test_a_body_that_is_not_a_completion_is_unusable() -> None:
    with pytest.raises(UnusableAnswerError, match="invalid JSON"):
        await _ask(lambda _: httpx.Response(200, text="<html>"))
    with pytest.raises(UnusableAnswerError, match="without a choice"):
        await _ask(lambda _: httpx.Response(200, json={"choices": []}))


async def test_a_single_llama_cpp_model_is_served_whatever_it_is_called() -> None:
    models = {"object": "list", "data": [{"id": "ggml-model.gguf", "owned_by": "llamacpp"}]}
    client = _client(lambda _: httpx.Response(200, json=models))
    assert (await client.inspect("llava", timeout_s=1.0)).model == "llava"
    aliases = {"data": [{"id": "a", "aliases": ["llava"]}, {"id": "b"}]}
    assert await _client(lambda _: httpx.Response(200, json=aliases)).inspect("llava", timeout_s=1)
