"""The official ``ollama`` Python client works against the stand-in unchanged."""

from __future__ import annotations

import ollama
import pytest

from standins.ollama.server import RunningFakeOllama

from .samples import ANALYSIS_SCHEMA, PLAN_SCHEMA, GenerationPlan, ImageAnalysis, square_image

ANALYSIS = ImageAnalysis(
    description="A red square on a white background.",
    subjects=["red square"],
    colors=["red", "white"],
    materials=[],
    style="flat graphic",
    lighting=ImageAnalysis.Lighting(kind="studio", description="even"),
    orientation="landscape",
    width=64,
    height=48,
    brightness=0.8,
)


async def test_unstreamed_chat_with_image_and_schema_gets_the_scripted_answer(
    running: RunningFakeOllama, client: ollama.AsyncClient
) -> None:
    running.fake.script.queue(ANALYSIS.model_dump(mode="json"), model="llava")
    response = await client.chat(
        model="llava",
        messages=[{"role": "user", "content": "Describe the image.", "images": [square_image()]}],
        format=ANALYSIS_SCHEMA,
        options={"temperature": 0, "seed": 7},
        stream=False,
    )
    assert ImageAnalysis.model_validate_json(response.message.content or "") == ANALYSIS
    assert response.done_reason == "stop"
    assert running.fake.requests_to("/api/chat")[-1].images() == [square_image()]


async def test_streamed_chat_with_image_and_schema_validates(client: ollama.AsyncClient) -> None:
    stream = await client.chat(
        model="llava:latest",
        messages=[{"role": "user", "content": "Describe the image.", "images": [square_image()]}],
        format=ANALYSIS_SCHEMA,
        stream=True,
    )
    parts = [part async for part in stream]
    assert parts[-1].done is True and parts[-1].eval_count
    ImageAnalysis.model_validate_json("".join(part.message.content or "" for part in parts))


async def test_thinking_chat_returns_trace_and_valid_plan(client: ollama.AsyncClient) -> None:
    response = await client.chat(
        model="gpt-oss:20b",
        messages=[{"role": "user", "content": "Instruction: make it look like a watercolor"}],
        format=PLAN_SCHEMA,
        think="low",
    )
    assert response.message.thinking
    GenerationPlan.model_validate_json(response.message.content or "")


async def test_ps_reports_the_resident_model(client: ollama.AsyncClient) -> None:
    await client.chat(model="llava", messages=[], keep_alive="10m")
    models = (await client.ps()).models
    assert [m.model for m in models] == ["llava:latest"]
    assert models[0].size_vram and models[0].context_length == 4096 and models[0].expires_at


async def test_list_reports_installed_models(client: ollama.AsyncClient) -> None:
    models = (await client.list()).models
    assert {m.model for m in models} == {"llava:latest", "gpt-oss:20b"}
    assert all(m.details and m.details.parameter_size for m in models)


async def test_show_reports_capabilities(client: ollama.AsyncClient) -> None:
    assert (await client.show("llava")).capabilities == ["completion", "vision"]
    assert (await client.show("gpt-oss:20b")).capabilities == ["completion", "tools", "thinking"]


async def test_unknown_model_raises_response_error_with_404(client: ollama.AsyncClient) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        await client.chat(model="llava:34b", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'llava:34b' not found"


async def test_mid_stream_error_raises_response_error_without_status(
    running: RunningFakeOllama, client: ollama.AsyncClient
) -> None:
    running.fake.faults.add(kind="stream_error", after_lines=3, times=1)
    stream = await client.chat(
        model="llava", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(ollama.ResponseError) as caught:
        async for _ in stream:
            pass
    assert caught.value.status_code == -1


async def test_refused_connection_raises_connection_error(
    running: RunningFakeOllama, client: ollama.AsyncClient
) -> None:
    await running.refuse_connections()
    with pytest.raises(ConnectionError):
        await client.ps()
