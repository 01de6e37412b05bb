"""The official ``openai`` client works against the stand-in's ``/v1`` as against Ollama's."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from standins.ollama.server import RunningFakeOllama

from .samples import ANALYSIS_SCHEMA, PLAN_SCHEMA, GenerationPlan, ImageAnalysis, square_image


@pytest.fixture
async def oai(running: RunningFakeOllama) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official OpenAI client, without retries, pointed at the stand-in's /v1."""
    async with openai.AsyncOpenAI(
        base_url=f"{running.url}/v1", api_key="ollama", max_retries=0, timeout=10.0
    ) as client:
        yield client


def _data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def _schema_format(name: str, schema: dict[str, object]) -> ResponseFormatJSONSchema:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


async def test_chat_with_image_and_json_schema_answers_a_valid_completion(
    running: RunningFakeOllama, oai: openai.AsyncOpenAI
) -> None:
    image = square_image()
    question: ChatCompletionMessageParam = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe the image."},
            {"type": "image_url", "image_url": {"url": _data_url(image)}},
        ],
    }
    completion = await oai.chat.completions.create(
        model="llava",
        messages=[question],
        response_format=_schema_format("image_analysis", ANALYSIS_SCHEMA),
        temperature=0,
        max_tokens=2048,
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-") and completion.model == "llava"
    choice = completion.choices[0]
    assert (choice.index, choice.finish_reason, choice.message.role) == (0, "stop", "assistant")
    ImageAnalysis.model_validate_json(choice.message.content or "")
    assert completion.usage and completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    sent = running.fake.requests_to("/v1/chat/completions")[-1]
    assert sent.images() == [image]
    assert sent.body["response_format"]["json_schema"]["schema"] == ANALYSIS_SCHEMA


async def test_thinking_model_returns_reasoning_and_schema_valid_plan(
    oai: openai.AsyncOpenAI,
) -> None:
    completion = await oai.chat.completions.create(
        model="gpt-oss:20b",
        messages=[{"role": "user", "content": "Plan a watercolor of a lighthouse."}],
        response_format=_schema_format("plan", PLAN_SCHEMA),
        reasoning_effort="low",
    )
    message = completion.choices[0].message
    assert getattr(message, "reasoning", None)
    GenerationPlan.model_validate_json(message.content or "")


async def test_json_object_format_answers_a_json_object(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(
        model="llava",
        messages=[{"role": "user", "content": "Answer in JSON."}],
        response_format={"type": "json_object"},
    )
    assert (completion.choices[0].message.content or "").startswith("{")


async def test_parse_with_a_pydantic_model_validates(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.parse(
        model="gpt-oss:20b",
        messages=[{"role": "user", "content": "Plan a portrait."}],
        response_format=GenerationPlan,
    )
    assert isinstance(completion.choices[0].message.parsed, GenerationPlan)


async def test_streamed_completion_joins_to_the_whole_answer(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-oss:20b",
        messages=[{"role": "user", "content": "Plan a portrait."}],
        response_format=_schema_format("plan", PLAN_SCHEMA),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    GenerationPlan.model_validate_json(content)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.completion_tokens


async def test_models_lists_the_installed_models(oai: openai.AsyncOpenAI) -> None:
    models = [model async for model in oai.models.list()]
    assert {m.id for m in models} == {"llava:latest", "gpt-oss:20b"}
    assert all(m.object == "model" and m.owned_by == "library" for m in models)
    assert (await oai.models.retrieve("llava")).id == "llava:latest"


async def test_unknown_model_raises_not_found(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await oai.chat.completions.create(
            model="llava:34b", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 404
    assert caught.value.body == {
        "message": "model 'llava:34b' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "[] is too short - 'messages'"),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}],
                }
            ],
            "image URLs are not currently supported, please use base64 encoded data instead",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lG"}}
                    ],
                }
            ],
            "invalid image input",
        ),
    ],
)
async def test_bad_body_raises_bad_request(
    oai: openai.AsyncOpenAI, messages: list[ChatCompletionMessageParam], message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.chat.completions.create(model="llava", messages=messages)
    assert caught.value.body == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


async def test_bad_reasoning_effort_raises_bad_request(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        await oai.chat.completions.create(
            model="gpt-oss:20b",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"reasoning_effort": "extreme"},
        )


async def test_runner_failure_raises_internal_server_error(
    running: RunningFakeOllama, oai: openai.AsyncOpenAI
) -> None:
    running.fake.faults.add(kind="error", times=1, model="llava")
    with pytest.raises(openai.InternalServerError) as caught:
        await oai.chat.completions.create(
            model="llava", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 500
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "api_error"


async def test_refused_connection_raises_connection_error(
    running: RunningFakeOllama, oai: openai.AsyncOpenAI
) -> None:
    await running.refuse_connections()
    with pytest.raises(openai.APIConnectionError):
        await oai.models.list()


async def test_chat_shares_residency_with_the_native_api(
    running: RunningFakeOllama, oai: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    await oai.chat.completions.create(model="llava", messages=[{"role": "user", "content": "hi"}])
    ps = (await http.get("/api/ps")).json()
    assert [m["name"] for m in ps["models"]] == ["llava:latest"]
    assert running.fake.load_count == 1
