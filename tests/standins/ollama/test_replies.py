"""Replies are computed from the request: real image facts, instruction keywords, schema."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from .samples import ANALYSIS_SCHEMA, PLAN_SCHEMA, b64, square_image


async def _content(http: httpx.AsyncClient, request: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/api/chat", json={"stream": False, **request})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _vision(image: bytes, schema: Any = ANALYSIS_SCHEMA, **extra: Any) -> dict[str, Any]:
    request = {
        "model": "llava",
        "messages": [{"role": "user", "content": "Describe.", "images": [b64(image)]}],
        **extra,
    }
    if schema is not None:
        request["format"] = schema
    return request


def _plan(instruction: str, schema: Any = PLAN_SCHEMA, **extra: Any) -> dict[str, Any]:
    request = {
        "model": "gpt-oss:20b",
        "messages": [{"role": "user", "content": instruction}],
        "think": "low",
        **extra,
    }
    if schema is not None:
        request["format"] = schema
    return request


async def _analysis(http: httpx.AsyncClient, image: bytes) -> dict[str, Any]:
    body = await _content(http, _vision(image))
    result: dict[str, Any] = json.loads(body["message"]["content"])
    return result


@pytest.mark.parametrize(
    ("width", "height", "orientation"),
    [(64, 48, "landscape"), (30, 60, "portrait"), (40, 40, "square")],
)
async def test_vision_reports_the_real_size_and_orientation(
    http: httpx.AsyncClient, width: int, height: int, orientation: str
) -> None:
    analysis = await _analysis(http, square_image(width, height))
    assert (analysis["width"], analysis["height"]) == (width, height)
    assert analysis["orientation"] == orientation
    assert f"{width}x{height}" in analysis["description"]


async def test_vision_names_the_dominant_colours(http: httpx.AsyncClient) -> None:
    image = square_image(60, 60, background=(250, 240, 20), square=(10, 20, 230))
    analysis = await _analysis(http, image)
    assert analysis["colors"][:2] == ["yellow", "blue"]
    assert "blue" in analysis["subjects"][0]


async def test_vision_brightness_follows_the_pixels(http: httpx.AsyncClient) -> None:
    dark = await _analysis(http, square_image(background=(10, 10, 10), square=(40, 40, 40)))
    light = await _analysis(http, square_image(background=(250, 250, 250), square=(220, 220, 220)))
    assert dark["brightness"] < 0.2 < 0.8 < light["brightness"]


async def test_vision_reads_jpeg_too(http: httpx.AsyncClient) -> None:
    analysis = await _analysis(http, square_image(50, 20, image_format="JPEG"))
    assert (analysis["width"], analysis["orientation"]) == (50, "landscape")


async def test_vision_describes_only_the_first_of_several_images(http: httpx.AsyncClient) -> None:
    request = _vision(square_image(64, 48))
    request["messages"][0]["images"].append(b64(square_image(20, 90)))
    analysis = json.loads((await _content(http, request))["message"]["content"])
    assert (analysis["width"], analysis["height"]) == (64, 48)


async def test_vision_without_format_answers_plain_text(http: httpx.AsyncClient) -> None:
    text = (await _content(http, _vision(square_image(), schema=None)))["message"]["content"]
    assert "64x48" in text and "red" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


async def test_vision_with_json_format_answers_an_object(http: httpx.AsyncClient) -> None:
    text = (await _content(http, _vision(square_image(), schema="json")))["message"]["content"]
    assert json.loads(text)["colors"] == ["white", "red"]


async def test_same_request_gets_the_same_reply(http: httpx.AsyncClient) -> None:
    first = await _content(http, _vision(square_image(), options={"seed": 3}))
    second = await _content(http, _vision(square_image(), options={"seed": 3}))
    assert first["message"] == second["message"]


async def test_seed_changes_wording_only_above_temperature_zero(http: httpx.AsyncClient) -> None:
    async def text(seed: int, temperature: float) -> str:
        options = {"seed": seed, "temperature": temperature}
        body = await _content(http, _vision(square_image(), schema=None, options=options))
        return str(body["message"]["content"])

    assert await text(1, 0.0) == await text(2, 0.0)
    assert await text(1, 0.8) != await text(2, 0.8)


async def test_plan_validates_against_its_schema(http: httpx.AsyncClient) -> None:
    body = await _content(http, _plan("Instruction: make it a watercolor painting"))
    jsonschema.validate(json.loads(body["message"]["content"]), PLAN_SCHEMA)


@pytest.mark.parametrize(
    ("instruction", "intent"),
    [
        ("сделай в стиле акварели", "img2img_restyle"),
        ("нарисуй кота в шляпе", "txt2img"),
        ("убери фон", "img2img_edit"),
        ("замени небо на закат", "img2img_edit"),
        ("увеличь разрешение и резкость", "upscale"),
        ("make it look like an oil painting", "img2img_restyle"),
        ("draw a lighthouse from scratch", "txt2img"),
        ("give me another variation", "variation"),
    ],
)
async def test_intent_follows_keywords_in_russian_and_english(
    http: httpx.AsyncClient, instruction: str, intent: str
) -> None:
    body = await _content(http, _plan(instruction))
    assert json.loads(body["message"]["content"])["intent"] == intent


async def test_positive_prompt_is_english_for_a_russian_instruction(
    http: httpx.AsyncClient,
) -> None:
    body = await _content(http, _plan("Запрос: сделай в стиле акварели, ночью"))
    prompt = json.loads(body["message"]["content"])["positive_prompt"]
    assert "watercolor painting" in prompt and "at night" in prompt
    assert not re.search("[а-яА-ЯёЁ]", prompt)


async def test_plan_uses_the_analysis_embedded_in_the_message(http: httpx.AsyncClient) -> None:
    analysis = await _analysis(http, square_image(background=(0, 0, 128), square=(255, 140, 0)))
    message = f"Instruction: make it a pencil sketch\nAnalysis: {json.dumps(analysis)}"
    plan = json.loads((await _content(http, _plan(message)))["message"]["content"])
    assert "pencil sketch" in plan["positive_prompt"]
    assert "orange" in plan["positive_prompt"]
    assert plan["intent"] == "img2img_restyle"


async def test_numbers_stay_inside_tight_bounds(http: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {
            "denoise": {"type": "number", "minimum": 0.1, "maximum": 0.4},
            "steps": {"type": "integer", "minimum": 4, "maximum": 8, "multipleOf": 3},
            "guidance": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 3.5},
            "cfg": {"type": "number", "minimum": 2},
        },
        "required": ["denoise", "steps", "guidance", "cfg"],
    }
    plan = json.loads(
        (await _content(http, _plan("restyle as anime", schema)))["message"]["content"]
    )
    jsonschema.validate(plan, schema)
    assert plan["steps"] == 6


async def test_seed_option_is_echoed_into_a_seed_field(http: httpx.AsyncClient) -> None:
    body = await _content(http, _plan("draw a cat", options={"seed": 1234}))
    assert json.loads(body["message"]["content"])["seed"] == 1234


async def test_text_json_format_uses_the_keys_the_prompt_names(http: httpx.AsyncClient) -> None:
    request = _plan('Answer with JSON keys "positive_prompt" and "denoise". Draw a fox.', "json")
    reply = json.loads((await _content(http, request))["message"]["content"])
    assert set(reply) == {"positive_prompt", "denoise"}


async def test_text_without_format_answers_plain_text(http: httpx.AsyncClient) -> None:
    body = await _content(http, _plan("draw a lighthouse", schema=None))
    assert "lighthouse" in body["message"]["content"]


async def test_omitted_think_still_produces_a_trace_on_gpt_oss(http: httpx.AsyncClient) -> None:
    request = _plan("draw a cat")
    del request["think"]
    assert (await _content(http, request))["message"]["thinking"]


async def test_higher_think_levels_think_longer(http: httpx.AsyncClient) -> None:
    lengths = [
        len((await _content(http, _plan("draw a cat", think=level)))["message"]["thinking"])
        for level in ("low", "medium", "high")
    ]
    assert lengths == sorted(lengths) and len(set(lengths)) == 3


async def test_think_false_with_format_yields_empty_content_on_gpt_oss(
    http: httpx.AsyncClient,
) -> None:
    body = await _content(http, _plan("draw a cat", think=False))
    assert body["message"]["content"] == "" and body["done_reason"] == "stop"


async def test_thinking_spends_a_small_num_predict_and_leaves_no_content(
    http: httpx.AsyncClient,
) -> None:
    body = await _content(http, _plan("draw a cat", options={"num_predict": 8}))
    assert body["done_reason"] == "length"
    assert body["message"]["content"] == ""
    assert body["eval_count"] == 8


async def test_num_predict_past_the_trace_truncates_the_json(http: httpx.AsyncClient) -> None:
    thinking = (await _content(http, _plan("draw a cat")))["message"]["thinking"]
    budget = len(re.findall(r"\s*(?:\w+|[^\w\s])", thinking)) + 5
    body = await _content(http, _plan("draw a cat", options={"num_predict": budget}))
    assert body["done_reason"] == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(body["message"]["content"])


async def test_generate_with_a_schema_on_gpt_oss_yields_empty_response(
    http: httpx.AsyncClient,
) -> None:
    request = {
        "model": "gpt-oss:20b",
        "prompt": "draw a cat",
        "format": PLAN_SCHEMA,
        "stream": False,
    }
    body = (await http.post("/api/generate", json=request)).json()
    assert body["response"] == ""


async def test_stop_sequence_cuts_the_reply(http: httpx.AsyncClient) -> None:
    options = {"stop": ["palette"], "temperature": 0}
    body = await _content(http, _vision(square_image(), schema=None, options=options))
    assert body["message"]["content"].endswith("The ")


async def test_images_sent_to_a_text_model_are_ignored(http: httpx.AsyncClient) -> None:
    request = _plan("draw a cat")
    request["messages"][0]["images"] = [b64(square_image())]
    body = await _content(http, request)
    jsonschema.validate(json.loads(body["message"]["content"]), PLAN_SCHEMA)


async def test_bytes_that_are_no_image_fail_like_the_runner(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/chat", json={**_vision(b"not an image"), "stream": False})
    assert response.status_code == 500
    assert response.json()["error"].startswith("failed to process inputs")


async def test_generic_fields_inside_an_object_take_the_objects_meaning(
    http: httpx.AsyncClient,
) -> None:
    analysis = await _analysis(http, square_image(background=(250, 250, 250)))
    assert analysis["lighting"]["kind"] == "high-key"
    assert "lighting" in analysis["lighting"]["description"]
