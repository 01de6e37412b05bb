"""The vision model behind an OpenAI-compatible API: what differs from Ollama on the wire.

The rest of the vision suite runs on both backends; these tests pin the
``/v1/chat/completions`` form of what ``test_analyzer.py`` checks on ``/api/chat``.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from services.common.errors import FailedPreconditionError
from services.common.llm import ModelState
from services.vision.analysis import ANALYSIS_SCHEMA, AnalysisSource
from standins.ollama.server import RunningFakeOllama
from tests.vision.conftest import analyzer_for, chat_requests, fixture_image

pytestmark = pytest.mark.llm_backends("openai")


def _image_urls(body: dict[str, Any]) -> list[str]:
    return [
        part["image_url"]["url"]
        for message in body["messages"]
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image_url"
    ]


async def test_the_model_gets_the_schema_and_one_downscaled_jpeg_as_a_data_url(
    ollama: RunningFakeOllama,
) -> None:
    async with analyzer_for(ollama, model_image_side=320) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    assert analysis.source is AnalysisSource.MODEL
    (body,) = chat_requests(ollama)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "image_analysis", "schema": ANALYSIS_SCHEMA, "strict": True},
    }
    (url,) = _image_urls(body)
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    with Image.open(io.BytesIO(base64.b64decode(url.removeprefix(prefix)))) as sent:
        assert (sent.format, sent.size) == ("JPEG", (320, 213))


async def test_every_call_carries_the_same_sampling_choices_and_no_ollama_options(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind="missing_fields", fields=("materials",), times=1)
    async with analyzer_for(ollama, keep_alive="3m") as (analyzer, _):
        await analyzer.analyze(fixture_image("coffee.jpg"))
        await analyzer.analyze(fixture_image("chelsea.jpg"))
    bodies = chat_requests(ollama)
    assert len(bodies) == 3  # coffee, its re-ask, chelsea
    assert {(b["temperature"], b["max_tokens"], b["seed"]) for b in bodies} == {(0.1, 1024, 42)}
    assert not any({"keep_alive", "options", "num_ctx"} & set(b) for b in bodies)
    assert ollama.fake.load_count == 1


async def test_one_malformed_answer_is_retried_with_the_next_seed(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind="malformed_json", times=1)
    async with analyzer_for(ollama, seed=7) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    assert [b["seed"] for b in chat_requests(ollama)] == [7, 8]
    assert analysis.source is AnalysisSource.MODEL


async def test_a_model_the_server_does_not_serve_fails_the_precondition_naming_it(
    ollama: RunningFakeOllama,
) -> None:
    async with analyzer_for(ollama, model="llava:34b") as (analyzer, _):
        with pytest.raises(FailedPreconditionError, match=r"no model 'llava:34b'") as caught:
            await analyzer.analyze(fixture_image("coffee.jpg"))
    assert len(chat_requests(ollama)) == 1
    assert caught.value.metadata == {"backend": "openai", "model": "llava:34b"}
    (violation,) = caught.value.violations
    assert (violation.type, violation.subject) == ("OPENAI_MODEL", "llava:34b")


async def test_the_probe_says_it_cannot_verify_vision_on_this_api(
    ollama: RunningFakeOllama,
) -> None:
    # The API lists names only: a text-only model cannot be told apart before it is asked
    # (vLLM and llama.cpp then refuse the image, which ends in the fallback).
    async with analyzer_for(ollama, model="gpt-oss:20b") as (_, probe):
        assert await probe.check()
    assert probe.state is ModelState.READY
    assert "does not report whether it has vision" in probe.reason
