"""The text model behind an OpenAI-compatible API: what differs from Ollama on the wire.

The rest of the planner suite runs on both backends; these tests pin the
``/v1/chat/completions`` form of what ``test_service.py`` checks on ``/api/chat``.
"""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from imagegen.common.v1 import common_pb2
from imagegen.planner.v1 import planner_pb2
from services.common.llm.openai import RELEASE_UNSUPPORTED
from services.planner.schema import PLAN_SCHEMA
from standins.ollama.server import RunningFakeOllama
from tests.planner.conftest import (
    SOFA,
    chat_bodies,
    living_room_proto,
    plan_request,
    planner_server,
    planner_settings,
)

pytestmark = pytest.mark.llm_backends("openai")


async def test_the_model_gets_the_schema_a_reasoning_effort_and_the_token_limit(
    ollama: RunningFakeOllama,
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    assert response.plan.source == common_pb2.PLAN_SOURCE_MODEL
    (body,) = chat_bodies(ollama)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "prompt_plan", "schema": PLAN_SCHEMA, "strict": True},
    }
    assert body["reasoning_effort"] == "low"
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (3072, 0.6, 42)
    assert SOFA in body["messages"][-1]["content"]
    assert not {"keep_alive", "options", "think", "format"} & set(body)


async def test_a_model_the_server_does_not_serve_is_a_failed_precondition(
    ollama: RunningFakeOllama,
) -> None:
    settings = planner_settings(ollama.url, model="gpt-oss:120b")
    async with planner_server(settings) as (_, stub):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no model 'gpt-oss:120b'" in (caught.value.details() or "")


async def test_release_models_reports_that_the_server_keeps_its_model(
    ollama: RunningFakeOllama,
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
        response = await stub.ReleaseModels(planner_pb2.ReleaseModelsRequest(), timeout=10)
    assert response.unsupported_reason == RELEASE_UNSUPPORTED
    assert list(response.released_models) == []
    assert ollama.fake.resident_models() == ["gpt-oss:20b"]
