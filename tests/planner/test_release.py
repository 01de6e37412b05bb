"""PlannerService.ReleaseModels on Ollama: the single-GPU hand-over, over gRPC.

The OpenAI-compatible case is in ``test_openai_backend.py``.
"""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from imagegen.planner.v1 import planner_pb2
from standins.ollama.server import RunningFakeOllama
from tests.planner.conftest import living_room_proto, plan_request, planner_server, planner_settings

pytestmark = pytest.mark.llm_backends("ollama")


async def test_the_loaded_text_model_leaves_the_gpu_and_comes_back(
    ollama: RunningFakeOllama,
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
        released = await stub.ReleaseModels(planner_pb2.ReleaseModelsRequest(), timeout=10)
        assert ollama.fake.resident_models() == []
        again = await stub.ReleaseModels(planner_pb2.ReleaseModelsRequest(), timeout=10)
        await stub.PlanPrompt(plan_request("A red fox in the snow"))
    assert list(released.released_models) == ["gpt-oss:20b"]
    assert not released.held_models and not released.unsupported_reason
    assert list(again.released_models) == []
    assert ollama.fake.resident_models() == ["gpt-oss:20b"]


async def test_an_unreachable_ollama_is_unavailable(ollama: RunningFakeOllama) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        await ollama.stop()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReleaseModels(planner_pb2.ReleaseModelsRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "could not release 'gpt-oss:20b'" in (caught.value.details() or "")
