"""Every fault kind, its limits (next N requests, one model) and how it is configured."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import ollama
import pytest
from pydantic import ValidationError

from standins.ollama.faults import RUNNER_STOPPED_MESSAGE, Fault, FaultKind
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

from .samples import ANALYSIS_SCHEMA, b64, square_image


def _describe(stream: bool = False, schema: Any = ANALYSIS_SCHEMA) -> dict[str, Any]:
    return {
        "model": "llava",
        "stream": stream,
        "format": schema,
        "messages": [{"role": "user", "content": "Describe.", "images": [b64(square_image())]}],
    }


async def test_error_fault_answers_500_with_ollamas_body(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="error")
    response = await http.post("/api/chat", json=_describe())
    assert response.status_code == 500
    assert response.json() == {"error": RUNNER_STOPPED_MESSAGE}


async def test_error_fault_can_carry_another_status_and_text(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="error", status=503, message="server busy")
    response = await http.post("/api/chat", json=_describe())
    assert (response.status_code, response.json()) == (503, {"error": "server busy"})


async def test_fault_limited_to_the_next_two_calls_then_recovers(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="error", times=2)
    statuses = [(await http.post("/api/chat", json=_describe())).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert running.fake.faults.active == []


async def test_fault_for_one_model_spares_the_other(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="error", model="gpt-oss:20b")
    plan = {"model": "gpt-oss:20b", "stream": False, "messages": [{"role": "user", "content": "x"}]}
    assert (await http.post("/api/chat", json=_describe())).status_code == 200
    assert (await http.post("/api/chat", json=plan)).status_code == 500


async def test_fault_for_an_alias_hits_the_canonical_model(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="error", model="llava", times=1)
    request = {**_describe(), "model": "llava:latest"}
    assert (await http.post("/api/chat", json=request)).status_code == 500


async def test_faults_leave_preload_requests_alone_unless_asked(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="error", times=1)
    preload = {"model": "llava", "messages": []}
    assert (await http.post("/api/chat", json=preload)).status_code == 200
    running.fake.faults.clear()
    running.fake.faults.add(kind="error", times=1, include_load_requests=True)
    assert (await http.post("/api/chat", json=preload)).status_code == 500


async def test_error_fault_on_ps(running: RunningFakeOllama, http: httpx.AsyncClient) -> None:
    running.fake.faults.add(kind="error", routes=("ps",), times=1)
    assert (await http.get("/api/ps")).status_code == 500
    assert (await http.get("/api/ps")).status_code == 200


async def test_delay_fault_holds_the_reply_back(running: RunningFakeOllama) -> None:
    running.fake.faults.add(kind="delay", delay_s=5.0, times=1)
    async with httpx.AsyncClient(base_url=running.url, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/api/chat", json=_describe())


async def test_chunk_delay_fault_slows_the_stream_between_lines(running: RunningFakeOllama) -> None:
    running.fake.faults.add(kind="delay", chunk_delay_s=5.0, times=1)
    received: list[str] = []
    async with httpx.AsyncClient(base_url=running.url, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            async with http.stream("POST", "/api/chat", json=_describe(stream=True)) as response:
                async for line in response.aiter_lines():
                    received.append(line)
    assert len(received) == 1


async def test_malformed_json_fault_sends_content_that_is_not_json(
    running: RunningFakeOllama, client: ollama.AsyncClient
) -> None:
    running.fake.faults.add(kind="malformed_json", times=1)
    response = await client.chat(**_describe())
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.message.content or "")


async def test_schema_violation_fault_sends_valid_json_that_breaks_the_schema(
    running: RunningFakeOllama, client: ollama.AsyncClient
) -> None:
    running.fake.faults.add(kind="schema_violation", times=1)
    content = json.loads((await client.chat(**_describe())).message.content or "")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(content, ANALYSIS_SCHEMA)
    fine = json.loads((await client.chat(**_describe())).message.content or "")
    jsonschema.validate(fine, ANALYSIS_SCHEMA)


async def test_schema_violation_with_plain_json_format_is_not_an_object(
    running: RunningFakeOllama, client: ollama.AsyncClient
) -> None:
    running.fake.faults.add(kind="schema_violation", times=1)
    content = json.loads((await client.chat(**_describe(schema="json"))).message.content or "")
    assert not isinstance(content, dict)


async def test_missing_fields_fault_drops_the_chosen_keys(
    running: RunningFakeOllama, client: ollama.AsyncClient
) -> None:
    running.fake.faults.add(kind="missing_fields", fields=("colors", "materials", "lighting.kind"))
    content = json.loads((await client.chat(**_describe())).message.content or "")
    assert "colors" not in content and "materials" not in content
    assert "kind" not in content["lighting"] and "description" in content["lighting"]
    assert {"description", "subjects", "style"} <= set(content)


async def test_truncated_stream_fault_closes_the_connection_without_a_done_line(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="truncated_stream", after_lines=3, times=1)
    received: list[dict[str, Any]] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with http.stream("POST", "/api/chat", json=_describe(stream=True)) as response:
            async for line in response.aiter_lines():
                received.append(json.loads(line))
    assert len(received) == 3
    assert not any(line["done"] for line in received)


async def test_truncated_stream_fault_never_lets_the_done_line_through(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="truncated_stream", after_lines=10_000, times=1)
    received: list[dict[str, Any]] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with http.stream("POST", "/api/chat", json=_describe(stream=True)) as response:
            async for line in response.aiter_lines():
                received.append(json.loads(line))
    assert received and not any(line["done"] for line in received)


async def test_truncated_fault_on_an_unstreamed_call_disconnects(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="truncated_stream", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/api/chat", json=_describe())
    assert (await http.post("/api/chat", json=_describe())).status_code == 200


async def test_stream_error_fault_on_an_unstreamed_call_is_a_500(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    running.fake.faults.add(kind="stream_error", times=1)
    response = await http.post("/api/chat", json=_describe())
    assert (response.status_code, response.json()) == (500, {"error": RUNNER_STOPPED_MESSAGE})


async def test_refuse_fault_closes_the_port_until_connections_are_accepted(
    running: RunningFakeOllama,
) -> None:
    running.fake.faults.add(kind="refuse")
    await running.settled()
    async with httpx.AsyncClient(base_url=running.url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")
        await running.accept_connections()
        assert (await http.get("/")).status_code == 200


async def test_timed_refusal_reopens_the_same_port(running: RunningFakeOllama) -> None:
    url = running.url
    await running.refuse_connections(duration_s=0.05)
    async with httpx.AsyncClient(base_url=url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")
        await running.settled()
        assert (await http.get("/")).status_code == 200


async def test_refuse_in_settings_starts_with_the_port_closed() -> None:
    settings = FakeOllamaSettings(faults=[Fault(kind=FaultKind.REFUSE)])
    async with run_fake_ollama(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")
        await server.accept_connections()
        assert (await http.get("/")).status_code == 200


async def test_faults_from_the_environment_apply_from_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_OLLAMA_FAULTS", '[{"kind": "error", "times": 1, "status": 502}]')
    async with (
        run_fake_ollama(FakeOllamaSettings()) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        assert (await http.post("/api/chat", json=_describe())).status_code == 502
        assert (await http.post("/api/chat", json=_describe())).status_code == 200


def test_faults_can_be_listed_and_cleared(running: RunningFakeOllama) -> None:
    added = running.fake.faults.add(kind="malformed_json", times=2)
    listed = [(f.id, f.fault.kind, f.remaining) for f in running.fake.faults.active]
    assert listed == [(added.id, FaultKind.MALFORMED_JSON, 2)]
    running.fake.faults.clear()
    assert running.fake.faults.active == []


def test_an_unknown_fault_kind_is_refused(running: RunningFakeOllama) -> None:
    with pytest.raises(ValidationError):
        running.fake.faults.add(kind="explode")
