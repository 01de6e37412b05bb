"""Callers' own prompts (an approved plan's, the prompt overrides) are cleaned before rendering."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2

from gateway.jobs import GenerateJob
from gateway.validation import RequestLimits, validate_generate
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import InvalidArgumentError, status_details
from tests.gateway.images import jpeg_bytes
from tests.gateway.system import PLAN_ANSWER, System

SOURCE = common_pb2.Image(data=jpeg_bytes(120, 80))
INSTRUCTION = "Recolour the cup in dark green"
HOSTILE = "(masterpiece:9.5), embedding:evil, a green\x00 cup"


def _approved_plan(positive: str, negative: str = "") -> common_pb2.PromptPlan:
    return common_pb2.PromptPlan(
        positive_prompt=positive,
        negative_prompt=negative,
        settings=common_pb2.SamplerSettings(
            denoise=0.8, steps=4, cfg=1.0, guidance=3.5, sampler_name="euler", scheduler="simple"
        ),
        intent=common_pb2.EDIT_INTENT_COLOR_CHANGE,
    )


async def _generate(
    system: System, request: gateway_pb2.GenerateRequest
) -> list[gateway_pb2.GenerateResponse]:
    return [event async for event in system.stub.Generate(request, timeout=30)]


def _submitted_graph(system: System) -> str:
    (submitted,) = system.comfyui.fake.submitted
    return str(submitted.body)


def _cleaned_warnings(events: list[gateway_pb2.GenerateResponse]) -> list[str]:
    return [
        e.warning.message
        for e in events
        if e.HasField("warning") and e.warning.code == "PROMPT_CLEANED"
    ]


def _planner_calls(system: System) -> int:
    return system.ollama_chats("gpt-oss")


async def _refused_fields(system: System, request: gateway_pb2.GenerateRequest) -> list[str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _generate(system, request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    (bad_request,) = status_details(raised.value)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    return [v.field for v in bad_request.field_violations]


async def test_an_approved_plan_reaches_render_cleaned_with_a_warning(system: System) -> None:
    request = gateway_pb2.GenerateRequest(
        source_image=SOURCE, instruction=INSTRUCTION, plan=_approved_plan(HOSTILE), seed=3
    )
    events = await _generate(system, request)

    graph = _submitted_graph(system)
    assert "(masterpiece:2), a green cup" in graph
    assert "embedding" not in graph
    assert "masterpiece:9.5" not in graph
    (plan_event,) = [e.plan.plan for e in events if e.HasField("plan")]
    assert plan_event.positive_prompt == "(masterpiece:2), a green cup"
    (message,) = _cleaned_warnings(events)
    assert "approved plan's positive prompt" in message
    assert "embedding:evil" in message
    assert "(masterpiece:9.5) to 2" in message
    assert "1 control or invisible character" in message
    (result,) = [e.result for e in events if e.HasField("result")]
    assert result.positive_prompt == "(masterpiece:2), a green cup"


async def test_an_approved_plan_that_needs_no_cleaning_gives_no_warning(system: System) -> None:
    request = gateway_pb2.GenerateRequest(
        source_image=SOURCE, instruction=INSTRUCTION, plan=_approved_plan("a (green:1.2) cup")
    )
    events = await _generate(system, request)
    assert _cleaned_warnings(events) == []
    assert "a (green:1.2) cup" in _submitted_graph(system)


async def test_an_approved_plans_negative_prompt_is_cleaned_too(system: System) -> None:
    plan = _approved_plan("a green cup", negative="blurry, embedding:bad_hands")
    request = gateway_pb2.GenerateRequest(source_image=SOURCE, instruction=INSTRUCTION, plan=plan)
    events = await _generate(system, request)
    (plan_event,) = [e.plan.plan for e in events if e.HasField("plan")]
    assert plan_event.negative_prompt == "blurry"
    (message,) = _cleaned_warnings(events)
    assert "negative prompt" in message and "embedding:bad_hands" in message


async def test_a_prompt_override_replaces_the_planned_prompt_without_a_plan_call(
    system: System,
) -> None:
    request = gateway_pb2.GenerateRequest(
        source_image=SOURCE, instruction=INSTRUCTION, prompt="a bottle-green porcelain cup"
    )
    events = await _generate(system, request)

    # The settings are still planned from the instruction and the analysis.
    assert _planner_calls(system) == 1
    (plan_event,) = [e.plan.plan for e in events if e.HasField("plan")]
    assert plan_event.positive_prompt == "a bottle-green porcelain cup"
    assert plan_event.negative_prompt == PLAN_ANSWER["negative_prompt"]
    assert plan_event.settings.denoise == pytest.approx(PLAN_ANSWER["denoise"])
    graph = _submitted_graph(system)
    assert "a bottle-green porcelain cup" in graph
    assert PLAN_ANSWER["positive_prompt"] not in graph
    assert _cleaned_warnings(events) == []


async def test_a_prompt_override_is_cleaned_and_says_what_changed(system: System) -> None:
    request = gateway_pb2.GenerateRequest(
        source_image=SOURCE,
        instruction=INSTRUCTION,
        prompt=HOSTILE,
        negative_prompt="blurry\u200b, low quality",
    )
    events = await _generate(system, request)
    graph = _submitted_graph(system)
    assert "(masterpiece:2), a green cup" in graph
    assert "blurry, low quality" in graph
    assert "embedding" not in graph
    messages = _cleaned_warnings(events)
    assert len(messages) == 2
    assert messages[0].startswith("the prompt was cleaned before rendering")
    assert "embedding:evil" in messages[0]
    assert messages[1].startswith("the negative prompt was cleaned before rendering")


async def test_a_prompt_override_does_not_leak_into_a_reused_plan(system: System) -> None:
    await system.stub.Plan(
        gateway_pb2.PlanRequest(source_image=SOURCE, instruction=INSTRUCTION), timeout=30
    )
    override = gateway_pb2.GenerateRequest(
        source_image=SOURCE, instruction=INSTRUCTION, prompt="a bottle-green cup"
    )
    events = await _generate(system, override)
    (plan_ready,) = [e.plan for e in events if e.HasField("plan")]
    assert plan_ready.reused
    assert plan_ready.plan.positive_prompt == "a bottle-green cup"

    again = await system.stub.Plan(
        gateway_pb2.PlanRequest(source_image=SOURCE, instruction=INSTRUCTION), timeout=30
    )
    assert again.reused
    assert again.plan.positive_prompt == PLAN_ANSWER["positive_prompt"]


async def test_a_prompt_override_over_an_approved_plan_wins(system: System) -> None:
    request = gateway_pb2.GenerateRequest(
        source_image=SOURCE,
        instruction=INSTRUCTION,
        plan=_approved_plan("embedding:ignored"),
        prompt="a bottle-green cup",
    )
    events = await _generate(system, request)
    assert "a bottle-green cup" in _submitted_graph(system)
    assert _cleaned_warnings(events) == []


@pytest.mark.parametrize("prompt", ["embedding:evil", "(((", "\x00\u200b", "  "])
async def test_an_override_that_cleans_to_nothing_is_invalid_argument_naming_prompt(
    system: System, prompt: str
) -> None:
    request = gateway_pb2.GenerateRequest(source_image=SOURCE, instruction="x", prompt=prompt)
    assert await _refused_fields(system, request) == ["prompt"]
    assert system.ollama.fake.requests_to("/api/chat") == []
    assert not system.comfyui.fake.submitted


async def test_an_approved_plan_whose_prompt_cleans_to_nothing_names_the_field(
    system: System,
) -> None:
    request = gateway_pb2.GenerateRequest(
        source_image=SOURCE, instruction="x", plan=_approved_plan("embedding:evil")
    )
    assert await _refused_fields(system, request) == ["plan.positive_prompt"]
    assert not system.comfyui.fake.submitted


# --------------------------------------------------------------------------- no server


def _validated(**fields: object) -> GenerateJob:
    request = gateway_pb2.GenerateRequest(source_image=SOURCE, instruction=INSTRUCTION)
    for name, value in fields.items():
        if isinstance(value, common_pb2.PromptPlan):
            request.plan.CopyFrom(value)
        else:
            setattr(request, name, value)
    return validate_generate(request, RequestLimits(prompt_token_budget=20))


def test_a_blank_negative_prompt_override_means_none() -> None:
    job = _validated(negative_prompt="  ")
    assert job.caller_prompts.negative == ""
    assert job.caller_prompts.positive is None
    assert job.caller_prompts.warnings == ()


def test_a_prompt_over_the_budget_is_cut_with_a_warning_naming_the_budget() -> None:
    job = _validated(prompt="A green cup on a saucer. " * 10)
    assert job.caller_prompts.positive == "A green cup on a saucer. A green cup on a saucer."
    (notice,) = job.caller_prompts.warnings
    assert notice.code == "PROMPT_CLEANED"
    assert "the budget is 20" in notice.message and "sentence boundary" in notice.message


def test_applying_the_overrides_leaves_the_planned_plan_as_it_was() -> None:
    planned = common_pb2.PromptPlan(positive_prompt="planned", negative_prompt="planned")
    job = _validated(prompt="mine")
    applied = job.caller_prompts.apply(planned)
    assert (applied.positive_prompt, applied.negative_prompt) == ("mine", "planned")
    assert planned.positive_prompt == "planned"
    assert _validated().caller_prompts.apply(planned) is planned


def test_every_bad_caller_prompt_is_named_at_once() -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        _validated(prompt="(((", negative_prompt="embedding:x")
    assert [v.field for v in raised.value.violations] == ["prompt", "negative_prompt"]
