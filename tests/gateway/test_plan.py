"""Plan, then Generate with the (edited) plan: reviewing a plan before paying for a render."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.render.result_metadata import PARAMETERS_KEY, read_text_chunks
from tests.gateway.images import jpeg_bytes
from tests.gateway.system import System

SOURCE = common_pb2.Image(data=jpeg_bytes(120, 80))
INSTRUCTION = "Перекрась чашку в тёмно-зелёный цвет"


def _chat_calls(system: System) -> int:
    return len(system.ollama.fake.requests_to("/api/chat"))


async def test_plan_returns_analysis_and_plan_without_rendering(system: System) -> None:
    response = await system.stub.Plan(
        gateway_pb2.PlanRequest(source_image=SOURCE, instruction=INSTRUCTION), timeout=30
    )
    assert response.analysis.source == common_pb2.ANALYSIS_SOURCE_MODEL
    assert response.plan.positive_prompt
    assert response.plan.settings.HasField("denoise")
    assert system.comfyui.fake.submitted == []


async def test_generate_renders_an_edited_plan_exactly_and_asks_no_model(system: System) -> None:
    planned = await system.stub.Plan(
        gateway_pb2.PlanRequest(source_image=SOURCE, instruction=INSTRUCTION), timeout=30
    )
    calls_after_plan = _chat_calls(system)
    edited = common_pb2.PromptPlan()
    edited.CopyFrom(planned.plan)
    edited.positive_prompt = "a dark green porcelain cup on a white saucer, edited by hand"
    edited.settings.steps = 6

    request = gateway_pb2.GenerateRequest(
        source_image=SOURCE, instruction=INSTRUCTION, plan=edited, seed=11
    )
    events = [e async for e in system.stub.Generate(request, timeout=30)]
    (result,) = [e.result for e in events if e.HasField("result")]

    assert result.positive_prompt == edited.positive_prompt
    assert result.settings.steps == 6
    parameters = read_text_chunks(result.image.data)[PARAMETERS_KEY]
    assert parameters.startswith(edited.positive_prompt)
    submitted = str(system.comfyui.fake.submitted[-1].body)
    assert edited.positive_prompt in submitted
    assert _chat_calls(system) == calls_after_plan


async def test_approved_plan_is_reported_as_the_callers(system: System) -> None:
    plan = common_pb2.PromptPlan(
        positive_prompt="a green cup",
        settings=common_pb2.SamplerSettings(
            denoise=0.8, steps=4, cfg=1.0, guidance=3.5, sampler_name="euler", scheduler="simple"
        ),
        intent=common_pb2.EDIT_INTENT_COLOR_CHANGE,
    )
    request = gateway_pb2.GenerateRequest(source_image=SOURCE, instruction="x", plan=plan)
    events = [e async for e in system.stub.Generate(request, timeout=30)]
    (plan_event,) = [e.plan for e in events if e.HasField("plan")]
    assert plan_event.plan.source == common_pb2.PLAN_SOURCE_USER
    assert _chat_calls(system) == 0


async def test_generate_after_plan_reuses_them(system: System) -> None:
    await system.stub.Plan(
        gateway_pb2.PlanRequest(source_image=SOURCE, instruction=INSTRUCTION), timeout=30
    )
    calls = _chat_calls(system)
    request = gateway_pb2.GenerateRequest(source_image=SOURCE, instruction=INSTRUCTION)
    events = [e async for e in system.stub.Generate(request, timeout=30)]
    (analysis,) = [e.analysis for e in events if e.HasField("analysis")]
    (plan,) = [e.plan for e in events if e.HasField("plan")]
    assert analysis.reused and plan.reused
    assert _chat_calls(system) == calls


async def test_plan_with_a_blank_instruction_is_invalid(system: System) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await system.stub.Plan(gateway_pb2.PlanRequest(instruction=" "), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_plan_for_txt2img_has_no_analysis(system: System) -> None:
    response = await system.stub.Plan(
        gateway_pb2.PlanRequest(instruction="a lighthouse at dusk"), timeout=30
    )
    assert not response.HasField("analysis")
    assert response.plan.intent == common_pb2.EDIT_INTENT_TEXT_TO_IMAGE
