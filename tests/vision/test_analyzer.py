"""The analysis flow against the Ollama stand-in: model, re-ask, retries, fallback, cache."""

from __future__ import annotations

import asyncio
import base64
import io
import time

import pytest
from PIL import Image

from services.common.errors import BackendUnavailableError, FailedPreconditionError
from services.common.llm import ModelState
from services.vision.analysis import ANALYSIS_SCHEMA, AnalysisSource
from services.vision.settings import AnalysisPolicy
from standins.ollama.server import RunningFakeOllama
from tests.vision.conftest import (
    MODEL_ANSWER,
    analyzer_for,
    chat_requests,
    fixture_image,
    two_colour_png,
)


@pytest.mark.parametrize("photo", ["coffee.jpg", "chelsea.jpg"])
async def test_a_photo_gets_a_complete_model_analysis(
    ollama: RunningFakeOllama, photo: str
) -> None:
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image(photo))
    assert analysis.source is AnalysisSource.MODEL
    assert analysis.description == MODEL_ANSWER["description"]
    assert analysis.subjects == tuple(MODEL_ANSWER["subjects"])
    assert analysis.missing_fields == () and analysis.warnings == ()
    assert analysis.model == "llava"
    with Image.open(io.BytesIO(fixture_image(photo))) as source:
        assert (analysis.width, analysis.height) == source.size
    assert len(analysis.image_sha256) == 64


@pytest.mark.llm_backends("ollama")
async def test_the_model_gets_the_schema_and_one_downscaled_jpeg(
    ollama: RunningFakeOllama,
) -> None:
    async with analyzer_for(ollama, model_image_side=320) as (analyzer, _):
        await analyzer.analyze(fixture_image("coffee.jpg"))
    (body,) = chat_requests(ollama)
    assert body["format"] == ANALYSIS_SCHEMA
    images = [image for message in body["messages"] for image in message.get("images", [])]
    assert len(images) == 1
    assert not images[0].startswith("data:")
    with Image.open(io.BytesIO(base64.b64decode(images[0]))) as sent:
        assert sent.format == "JPEG"
        assert sent.size == (320, 213)


@pytest.mark.llm_backends("ollama")
async def test_a_large_image_is_sent_at_the_default_672_pixels(ollama: RunningFakeOllama) -> None:
    large = io.BytesIO()
    Image.open(io.BytesIO(fixture_image("coffee.jpg"))).resize((1800, 1200)).save(large, "JPEG")
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(large.getvalue())
    (body,) = chat_requests(ollama)
    with Image.open(io.BytesIO(base64.b64decode(body["messages"][-1]["images"][0]))) as sent:
        assert max(sent.size) == 672
    assert (analysis.width, analysis.height) == (1800, 1200)


@pytest.mark.llm_backends("ollama")
async def test_every_call_carries_the_same_pinned_options_and_keep_alive(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind="missing_fields", fields=("materials",), times=1)
    async with analyzer_for(ollama, num_ctx=8192, keep_alive="3m") as (analyzer, _):
        await analyzer.analyze(fixture_image("coffee.jpg"))
        await analyzer.analyze(fixture_image("chelsea.jpg"))
    bodies = chat_requests(ollama)
    assert len(bodies) == 3  # coffee, its re-ask, chelsea
    assert {b["options"]["num_ctx"] for b in bodies} == {8192}
    assert {b["options"]["temperature"] for b in bodies} == {0.1}
    assert {b["keep_alive"] for b in bodies} == {"3m"}
    assert ollama.fake.load_count == 1


async def test_missing_fields_trigger_exactly_one_targeted_reask(ollama: RunningFakeOllama) -> None:
    ollama.fake.faults.add(kind="missing_fields", fields=("colors", "materials"), times=1)
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    _, reask = chat_requests(ollama)
    question = reask["messages"][-1]["content"]
    assert "colors:" in question and "materials:" in question and "subjects:" not in question
    assert reask["messages"][-2]["role"] == "assistant"
    assert analysis.colors and analysis.materials
    assert analysis.missing_fields == () and analysis.source is AnalysisSource.MODEL


async def test_a_model_that_keeps_omitting_fields_gives_a_partial_analysis_with_a_warning(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind="missing_fields", fields=("materials",))
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("chelsea.jpg"))
    assert len(chat_requests(ollama)) == 2
    assert analysis.source is AnalysisSource.MODEL
    assert analysis.materials == ()
    assert analysis.missing_fields == ("materials",)
    assert any("materials" in w for w in analysis.warnings)
    assert analysis.colors and analysis.subjects


async def test_ollama_down_gives_a_fallback_with_the_image_real_colours(
    ollama: RunningFakeOllama,
) -> None:
    await ollama.stop()
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(two_colour_png((220, 25, 30), (40, 80, 200)))
    assert analysis.source is AnalysisSource.METADATA_FALLBACK
    assert set(analysis.colors) == {"red", "blue"}
    assert (analysis.width, analysis.height) == (240, 120)
    assert analysis.missing_fields == ("subjects", "materials", "style")
    assert any("cannot connect" in w for w in analysis.warnings)


async def test_malformed_json_twice_is_retried_then_falls_back(ollama: RunningFakeOllama) -> None:
    ollama.fake.faults.add(kind="malformed_json", times=2)
    async with analyzer_for(ollama, retry_attempts=2) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    bodies = chat_requests(ollama)
    assert len(bodies) == 2
    assert analysis.source is AnalysisSource.METADATA_FALLBACK
    assert any("not JSON" in w for w in analysis.warnings)
    assert "brown" in analysis.colors


@pytest.mark.llm_backends("ollama")
async def test_one_malformed_answer_is_retried_with_the_next_seed(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind="malformed_json", times=1)
    async with analyzer_for(ollama, seed=7) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    assert [b["options"]["seed"] for b in chat_requests(ollama)] == [7, 8]
    assert analysis.source is AnalysisSource.MODEL


async def test_server_errors_are_retried_until_the_model_answers(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind="error", status=500, times=2)
    async with analyzer_for(ollama, retry_attempts=3) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    assert len(chat_requests(ollama)) == 3
    assert analysis.source is AnalysisSource.MODEL


@pytest.mark.llm_backends("ollama")
async def test_a_model_that_is_not_pulled_fails_the_precondition_without_retries(
    ollama: RunningFakeOllama,
) -> None:
    async with analyzer_for(ollama, model="llava:34b") as (analyzer, _):
        with pytest.raises(FailedPreconditionError, match=r"ollama pull llava:34b"):
            await analyzer.analyze(fixture_image("coffee.jpg"))
    assert len(chat_requests(ollama)) == 1


async def test_the_same_image_twice_makes_one_model_call(ollama: RunningFakeOllama) -> None:
    async with analyzer_for(ollama) as (analyzer, _):
        first = await analyzer.analyze(fixture_image("coffee.jpg"))
        second = await analyzer.analyze(fixture_image("coffee.jpg"))
    assert len(chat_requests(ollama)) == 1
    assert not first.cached and second.cached
    assert second.description == first.description and second.colors == first.colors


async def test_twenty_concurrent_identical_requests_make_one_model_call(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind="delay", delay_s=0.2, times=1)
    async with analyzer_for(ollama) as (analyzer, _):
        results = await asyncio.gather(
            *(analyzer.analyze(fixture_image("chelsea.jpg")) for _ in range(20))
        )
    assert len(chat_requests(ollama)) == 1
    assert {r.description for r in results} == {results[0].description}
    assert {r.source for r in results} == {AnalysisSource.MODEL}


async def test_a_fallback_is_not_cached(ollama: RunningFakeOllama) -> None:
    ollama.fake.faults.add(kind="error", status=503, times=1)
    async with analyzer_for(ollama, retry_attempts=1) as (analyzer, _):
        first = await analyzer.analyze(fixture_image("coffee.jpg"))
        second = await analyzer.analyze(fixture_image("coffee.jpg"))
    assert first.source is AnalysisSource.METADATA_FALLBACK
    assert second.source is AnalysisSource.MODEL and not second.cached


@pytest.mark.llm_backends("ollama")
async def test_a_text_only_model_is_never_sent_the_image(ollama: RunningFakeOllama) -> None:
    async with analyzer_for(ollama, model="gpt-oss:20b") as (analyzer, probe):
        assert not await probe.check()
        assert probe.state is ModelState.LACKS_CAPABILITY
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    assert chat_requests(ollama) == []
    assert analysis.source is AnalysisSource.METADATA_FALLBACK
    assert any(
        "lacks the vision capability" in w and "images sent to it would be ignored" in w
        for w in analysis.warnings
    )


async def test_the_probe_is_ready_for_a_pulled_vision_model(ollama: RunningFakeOllama) -> None:
    async with analyzer_for(ollama) as (_, probe):
        assert await probe.check()
        assert probe.state is ModelState.READY


async def test_require_model_policy_refuses_instead_of_falling_back(
    ollama: RunningFakeOllama,
) -> None:
    await ollama.stop()
    async with analyzer_for(
        ollama, analysis_policy=AnalysisPolicy.REQUIRE_MODEL, retry_attempts=1
    ) as (analyzer, _):
        with pytest.raises(BackendUnavailableError, match="require_model"):
            await analyzer.analyze(fixture_image("coffee.jpg"))


async def test_a_caller_description_skips_the_model(ollama: RunningFakeOllama) -> None:
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(
            fixture_image("chelsea.jpg"), description="  Рыжий кот на ковре.  "
        )
    assert chat_requests(ollama) == []
    assert analysis.source is AnalysisSource.USER
    assert analysis.description == "Рыжий кот на ковре."
    assert (analysis.width, analysis.height) == (451, 300)


async def test_a_slow_model_falls_back_within_the_deadline(ollama: RunningFakeOllama) -> None:
    ollama.fake.faults.add(kind="delay", delay_s=5.0)
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(
            fixture_image("coffee.jpg"), deadline=time.monotonic() + 0.5
        )
    assert analysis.source is AnalysisSource.METADATA_FALLBACK
    assert any("timed out" in w for w in analysis.warnings)


@pytest.mark.llm_backends("ollama")
async def test_keep_alive_zero_unloads_the_model_after_each_analysis(
    ollama: RunningFakeOllama,
) -> None:
    async with analyzer_for(ollama, keep_alive="0") as (analyzer, _):
        await analyzer.analyze(fixture_image("coffee.jpg"))
    (body,) = chat_requests(ollama)
    assert body["keep_alive"] == 0
    await asyncio.wait_for(ollama.fake.wait_unloaded("llava"), timeout=5)
    assert ollama.fake.resident_models() == []


async def test_empty_lighting_and_composition_are_reasked_by_name(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.script.queue(
        {**MODEL_ANSWER, "lighting": "", "composition": "unknown"}, model="llava"
    )
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    _, reask = chat_requests(ollama)
    question = reask["messages"][-1]["content"]
    assert "- lighting:" in question and "- composition:" in question
    assert "- style:" not in question and "- colors:" not in question
    assert analysis.lighting == MODEL_ANSWER["lighting"]
    assert analysis.composition == MODEL_ANSWER["composition"]
    assert analysis.missing_fields == () and analysis.warnings == ()


async def test_a_style_left_empty_after_the_reask_is_reported_missing(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.script.always({**MODEL_ANSWER, "style": "", "lighting": "n/a"}, model="llava")
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    assert len(chat_requests(ollama)) == 2
    assert analysis.source is AnalysisSource.MODEL
    assert analysis.missing_fields == ("style", "lighting")
    assert "incomplete analysis: no style was named" in analysis.warnings
    assert "incomplete analysis: the lighting was not described" in analysis.warnings


async def test_a_description_missing_the_subject_is_noted_but_not_reported_empty(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.script.always(
        {**MODEL_ANSWER, "description": "A calm morning scene."}, model="llava"
    )
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(fixture_image("coffee.jpg"))
    assert len(chat_requests(ollama)) == 2
    assert analysis.description == "A calm morning scene."
    assert analysis.missing_fields == ()
    assert any("does not mention the main subject 'cup'" in w for w in analysis.warnings)
