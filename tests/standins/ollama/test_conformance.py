"""The stand-in answers in the shapes Ollama documents (tests/fixtures/ollama)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from standins.ollama.server import RunningFakeOllama

from .samples import (
    ANALYSIS_SCHEMA,
    b64,
    fixture_json,
    fixture_ndjson,
    shape_of,
    square_image,
)

JSON_TYPE = "application/json; charset=utf-8"
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def _chat(model: str, content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def _lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


async def test_root_says_ollama_is_running(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert (response.status_code, response.text) == (200, "Ollama is running")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_version_has_documented_shape(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/version")
    assert response.headers["content-type"] == JSON_TYPE
    assert shape_of(response.json()) == shape_of(fixture_json("version.json"))


async def test_tags_have_documented_shape(http: httpx.AsyncClient) -> None:
    body = (await http.get("/api/tags")).json()
    expected = shape_of(fixture_json("tags.json")["models"][0])
    assert [shape_of(model) for model in body["models"]] == [expected, expected]
    assert {m["name"] for m in body["models"]} == {"llava:latest", "gpt-oss:20b"}


async def test_ps_has_documented_shape(http: httpx.AsyncClient) -> None:
    await http.post("/api/chat", json={"model": "gpt-oss:20b", "messages": []})
    body = (await http.get("/api/ps")).json()
    assert [shape_of(m) for m in body["models"]] == [shape_of(fixture_json("ps.json")["models"][0])]
    assert RFC3339_NANO.match(body["models"][0]["expires_at"])


async def test_ps_lists_nothing_when_no_model_is_loaded(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/ps")).json() == {"models": []}


async def test_show_has_documented_keys_and_capabilities(http: httpx.AsyncClient) -> None:
    body = (await http.post("/api/show", json={"model": "llava"})).json()
    expected = fixture_json("show.json")
    assert list(body) == list(expected)
    assert {k: type(v) for k, v in body.items()} == {k: type(v) for k, v in expected.items()}
    assert shape_of(body["details"]) == shape_of(expected["details"])
    assert body["capabilities"] == ["completion", "vision"]


async def test_show_reports_gpt_oss_capabilities(http: httpx.AsyncClient) -> None:
    body = (await http.post("/api/show", json={"model": "gpt-oss:20b"})).json()
    assert body["capabilities"] == ["completion", "tools", "thinking"]
    assert "projector_info" not in body


async def test_unstreamed_vision_chat_has_documented_shape(http: httpx.AsyncClient) -> None:
    request = {
        "model": "llava",
        "stream": False,
        "format": ANALYSIS_SCHEMA,
        "messages": [{"role": "user", "content": "Describe.", "images": [b64(square_image())]}],
    }
    response = await http.post("/api/chat", json=request)
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert shape_of(body) == shape_of(fixture_json("chat_response.json"))
    assert body["model"] == "llava"  # echoed as sent, not canonicalised
    assert RFC3339_NANO.match(body["created_at"])


async def test_streamed_thinking_chat_follows_documented_line_sequence(
    http: httpx.AsyncClient,
) -> None:
    thinking, content, final = (
        shape_of(line) for line in fixture_ndjson("chat_stream_thinking.ndjson")
    )
    response = await http.post(
        "/api/chat", json=_chat("gpt-oss:20b", "draw a red fox", think="low")
    )
    assert response.headers["content-type"] == "application/x-ndjson"
    kinds = {"T": thinking, "C": content, "F": final}
    sequence = "".join(
        next((kind for kind, shape in kinds.items() if shape_of(line) == shape), "?")
        for line in _lines(response)
    )
    assert re.fullmatch(r"T+C+F", sequence), sequence


async def test_streamed_vision_chat_has_content_deltas_and_no_thinking(
    http: httpx.AsyncClient,
) -> None:
    request = {
        "model": "llava",
        "messages": [{"role": "user", "content": "Describe.", "images": [b64(square_image())]}],
    }
    lines = _lines(await http.post("/api/chat", json=request))
    assert all("thinking" not in line["message"] for line in lines)
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert lines[-1]["message"] == {"role": "assistant", "content": ""}


async def test_unstreamed_reply_concatenates_the_streamed_deltas(http: httpx.AsyncClient) -> None:
    request = _chat("gpt-oss:20b", "Make it a watercolor painting", think="medium")
    lines = _lines(await http.post("/api/chat", json=request))
    whole = (await http.post("/api/chat", json={**request, "stream": False})).json()
    assert (
        "".join(line["message"].get("thinking", "") for line in lines)
        == whole["message"]["thinking"]
    )
    assert "".join(line["message"]["content"] for line in lines) == whole["message"]["content"]


@pytest.mark.parametrize(
    ("name", "reason"), [("chat_load.json", "load"), ("chat_unload.json", "unload")]
)
async def test_preload_and_unload_answer_one_documented_object(
    http: httpx.AsyncClient, name: str, reason: str
) -> None:
    request: dict[str, Any] = {"model": "gpt-oss:20b", "messages": []}
    if reason == "unload":
        request["keep_alive"] = 0
    response = await http.post("/api/chat", json=request)  # stream defaults to true
    assert response.headers["content-type"] == JSON_TYPE
    assert shape_of(response.json()) == shape_of(fixture_json(name))
    assert response.json()["done_reason"] == reason


async def test_metrics_are_positive_integer_nanoseconds(http: httpx.AsyncClient) -> None:
    body = (await http.post("/api/chat", json=_chat("llava", stream=False))).json()
    metrics = {k: v for k, v in body.items() if k.endswith(("_duration", "_count"))}
    assert set(metrics) == {
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    }
    assert all(isinstance(v, int) and v > 0 for v in metrics.values())


SERVED_ERRORS = [c for c in fixture_json("errors.json") if c["path"] != "/api/generate"]


@pytest.mark.parametrize("case", SERVED_ERRORS, ids=lambda case: case["case"])
async def test_documented_errors_are_reproduced(
    http: httpx.AsyncClient, case: dict[str, Any]
) -> None:
    if "raw_body" in case:
        response = await http.post(case["path"], content=case["raw_body"].encode())
    else:
        response = await http.post(case["path"], json=case["body"])
    assert response.status_code == case["status"]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    if "error" in case:
        assert body["error"] == case["error"]
    else:
        assert body["error"].startswith(case["error_prefix"])


async def test_streamed_failure_before_first_line_keeps_a_real_status(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/api/chat", json=_chat("llava", format="xml"))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"].startswith("invalid format: ")


async def test_mid_stream_failure_arrives_as_an_error_line(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="stream_error", after_lines=2, times=1)
    response = await http.post("/api/chat", json=_chat("llava"))
    lines = _lines(response)
    assert response.status_code == 200
    assert len(lines) == 3 and all(line.get("done") is False for line in lines[:2])
    assert list(lines[-1]) == ["error"]
    assert "unexpectedly stopped" in lines[-1]["error"]


async def test_unknown_route_answers_gins_plain_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/nothing")
    assert (response.status_code, response.text) == (404, "404 page not found")
    assert response.headers["content-type"] == "text/plain"


async def test_go_json_escapes_html_characters(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/chat", json=_chat("<b>&"))
    assert response.content == b'{"error":"model \'\\u003cb\\u003e\\u0026\' not found"}'


@pytest.mark.parametrize("path", ["/api/generate", "/api/pull", "/api/embed"])
async def test_routes_the_product_does_not_use_answer_gins_404(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.post(path, json={"model": "llava", "prompt": "hi"})
    assert (response.status_code, response.text) == (404, "404 page not found")
