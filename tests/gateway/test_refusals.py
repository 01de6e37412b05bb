"""Refusals through the real gateway: the render's rules apply before any model call."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import status_details
from tests.gateway.images import jpeg_bytes
from tests.gateway.system import System

SOURCE = common_pb2.Image(data=jpeg_bytes(120, 80))


async def _refused_fields(system: System, request: gateway_pb2.GenerateRequest) -> list[str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        _ = [event async for event in system.stub.Generate(request, timeout=30)]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    (bad_request,) = status_details(raised.value)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    return [v.field for v in bad_request.field_violations]


def _untouched(system: System) -> bool:
    return system.ollama.fake.requests_to("/api/chat") == [] and not system.comfyui.fake.submitted


async def test_a_workflow_name_the_render_refuses_costs_no_model_call(system: System) -> None:
    request = gateway_pb2.GenerateRequest(source_image=SOURCE, instruction="x", workflow="_x")
    assert await _refused_fields(system, request) == ["workflow"]
    assert _untouched(system)


async def test_an_unknown_controlnet_type_is_invalid_argument(system: System) -> None:
    request = gateway_pb2.GenerateRequest(
        source_image=SOURCE,
        instruction="x",
        controlnet=common_pb2.ControlNetSpec(type=99),  # type: ignore[arg-type]
    )
    assert await _refused_fields(system, request) == ["controlnet.type"]
    assert _untouched(system)


async def test_an_approved_plan_with_an_unknown_intent_is_invalid_not_internal(
    system: System,
) -> None:
    plan = common_pb2.PromptPlan(positive_prompt="a green cup", intent=999)  # type: ignore[arg-type]
    request = gateway_pb2.GenerateRequest(source_image=SOURCE, instruction="x", plan=plan)
    assert await _refused_fields(system, request) == ["plan.intent"]
    assert _untouched(system)


async def test_approved_plan_settings_the_render_refuses_name_plan_settings(
    system: System,
) -> None:
    plan = common_pb2.PromptPlan(
        positive_prompt="a green cup", settings=common_pb2.SamplerSettings(steps=500)
    )
    request = gateway_pb2.GenerateRequest(source_image=SOURCE, instruction="x", plan=plan)
    assert await _refused_fields(system, request) == ["plan.settings.steps"]
    assert _untouched(system)


async def test_overrides_win_over_an_approved_plan(system: System) -> None:
    plan = common_pb2.PromptPlan(
        positive_prompt="a green cup",
        settings=common_pb2.SamplerSettings(denoise=0.8, steps=4, scheduler="simple"),
    )
    request = gateway_pb2.GenerateRequest(
        source_image=SOURCE,
        instruction="x",
        plan=plan,
        sampler=common_pb2.SamplerSettings(steps=3, guidance=2.2),
    )
    events = [event async for event in system.stub.Generate(request, timeout=30)]
    (result,) = [e.result for e in events if e.HasField("result")]
    settings = result.settings
    assert (settings.steps, settings.scheduler) == (3, "simple")
    assert settings.denoise == pytest.approx(0.8) and settings.guidance == pytest.approx(2.2)
