"""What the models answer: the test's script, else the requested schema filled; thinking quirks."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from standins.ollama.answers import DEFAULT_TEXT, Answer, ChatCall
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

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


async def test_unscripted_schema_request_gets_the_schema_filled(http: httpx.AsyncClient) -> None:
    body = await _content(http, _vision(square_image()))
    jsonschema.validate(json.loads(body["message"]["content"]), ANALYSIS_SCHEMA)


async def test_unscripted_answers_are_deterministic(http: httpx.AsyncClient) -> None:
    first = await _content(http, _plan("draw a cat"))
    second = await _content(http, _plan("draw a dog", options={"seed": 3, "temperature": 1}))
    assert first["message"] == second["message"]


async def test_unscripted_json_format_answers_an_empty_object(http: httpx.AsyncClient) -> None:
    body = await _content(http, _vision(square_image(), schema="json"))
    assert json.loads(body["message"]["content"]) == {}


async def test_unscripted_text_request_answers_a_fixed_sentence(http: httpx.AsyncClient) -> None:
    body = await _content(http, _vision(square_image(), schema=None))
    assert body["message"]["content"] == DEFAULT_TEXT


async def test_queued_answers_are_used_in_order_then_the_default(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.script.queue("first", {"n": 2}, model="llava")
    answers = [
        (await _content(http, _vision(square_image(), schema=None)))["message"]["content"]
        for _ in range(3)
    ]
    assert answers == ["first", '{"n": 2}', DEFAULT_TEXT]


async def test_a_script_for_one_model_spares_the_other(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.script.always("plan text", model="gpt-oss:20b")
    vision = await _content(http, _vision(square_image(), schema=None))
    plan = await _content(http, _plan("x", schema=None))
    assert (vision["message"]["content"], plan["message"]["content"]) == (DEFAULT_TEXT, "plan text")


async def test_a_queued_answer_wins_over_a_standing_one(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.script.always("standing")
    running.fake.script.queue("queued", model="llava")
    contents = [
        (await _content(http, _vision(square_image(), schema=None)))["message"]["content"]
        for _ in range(2)
    ]
    assert contents == ["queued", "standing"]


async def test_a_script_function_sees_the_request(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    seen: list[ChatCall] = []

    def answer(call: ChatCall) -> dict[str, Any]:
        seen.append(call)
        return {"echo": call.text, "images": len(call.images)}

    running.fake.script.always(answer, model="llava")
    body = await _content(http, _vision(square_image(), schema="json"))
    assert json.loads(body["message"]["content"]) == {"echo": "Describe.", "images": 1}
    assert seen[0].model == "llava:latest" and seen[0].format == "json"


async def test_a_scripted_answer_can_set_thinking_and_done_reason(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.script.queue(Answer('{"a":', thinking="hmm", done_reason="length"))
    body = await _content(http, _plan("x"))
    assert body["message"] == {"role": "assistant", "content": '{"a":', "thinking": "hmm"}
    assert body["done_reason"] == "length"


async def test_standing_answers_come_from_the_settings() -> None:
    settings = FakeOllamaSettings(answers={"llava": "from settings"})
    async with (
        run_fake_ollama(settings) as running,
        httpx.AsyncClient(base_url=running.url) as http,
    ):
        body = await _content(http, _vision(square_image(), schema=None))
    assert body["message"]["content"] == "from settings"


async def test_the_scripted_answer_is_streamed_in_pieces(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.script.queue("a red fox in the snow", model="llava")
    response = await http.post("/api/chat", json=_vision(square_image(), schema=None))
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 7 and lines[-1]["done"] is True
    assert "".join(line["message"]["content"] for line in lines) == "a red fox in the snow"


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


async def test_vision_models_do_not_think(http: httpx.AsyncClient) -> None:
    body = await _content(http, _vision(square_image()))
    assert "thinking" not in body["message"]


async def test_think_false_with_format_yields_empty_content_on_gpt_oss(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.script.always({"intent": "txt2img"})
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


async def test_stop_sequence_cuts_the_reply(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.script.queue("A red square. The palette is red.")
    options = {"stop": ["palette"]}
    body = await _content(http, _vision(square_image(), schema=None, options=options))
    assert body["message"]["content"] == "A red square. The "


async def test_images_sent_to_a_text_model_are_ignored(http: httpx.AsyncClient) -> None:
    request = _plan("draw a cat")
    request["messages"][0]["images"] = [b64(b"not even an image")]
    body = await _content(http, request)
    jsonschema.validate(json.loads(body["message"]["content"]), PLAN_SCHEMA)


async def test_bytes_that_are_no_image_fail_like_the_runner(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/chat", json={**_vision(b"not an image"), "stream": False})
    assert response.status_code == 500
    assert response.json()["error"].startswith("failed to process inputs")


async def test_image_tokens_count_in_the_prompt(http: httpx.AsyncClient) -> None:
    with_image = await _content(http, _vision(square_image(), schema=None))
    request = _vision(square_image(), schema=None)
    del request["messages"][0]["images"]
    without = await _content(http, request)
    assert with_image["prompt_eval_count"] - without["prompt_eval_count"] == 576
