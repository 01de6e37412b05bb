"""The model path of the planner against a scripted model server: exact answers, clamps, retries.

Each test runs on both backends: the script answers ``/api/chat`` or, as Ollama's
OpenAI-compatible route does, ``/v1/chat/completions``.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from services.common.clip_tokenizer import default_tokenizer
from services.common.errors import BackendUnavailableError, FailedPreconditionError
from services.common.llm import Backend
from services.planner.intents import Intent
from services.planner.plans import Mode, PlanRequest, PlanSource
from services.planner.sampling import SamplerOverrides
from services.planner.schema import PLAN_SCHEMA
from services.planner.settings import PlanPolicy
from tests.planner.conftest import LIVING_ROOM, SOFA, chat_stream, plan_json, scripted_planner

REQUEST = PlanRequest(SOFA, Mode.IMAGE_TO_IMAGE, LIVING_ROOM)


async def test_a_good_model_plan_is_used_as_written(llm_backend: Backend) -> None:
    planner, script, _ = scripted_planner(llm_backend, lambda: chat_stream(plan_json()))
    plan = await planner.plan(REQUEST)
    assert plan.source is PlanSource.MODEL
    assert plan.intent is Intent.COLOR_CHANGE
    assert plan.settings.denoise == 0.85
    assert "sofa" in plan.positive_prompt and "green" in plan.positive_prompt
    assert plan.model == "gpt-oss:20b"
    assert plan.warnings == ()
    assert len(script.chats) == 1


@pytest.mark.llm_backends("ollama")
async def test_the_request_pins_schema_think_and_token_limits(llm_backend: Backend) -> None:
    planner, script, _ = scripted_planner(llm_backend, lambda: chat_stream(plan_json()))
    await planner.plan(REQUEST)
    (body,) = script.chats
    assert body["format"] == PLAN_SCHEMA
    assert body["think"] == "low"
    assert body["options"]["num_ctx"] == 8192
    assert body["options"]["num_predict"] == 3072
    assert body["keep_alive"] == "10m"
    assert SOFA in body["messages"][-1]["content"]


@pytest.mark.llm_backends("ollama")  # capabilities come from /api/show
async def test_think_is_left_out_for_a_model_without_thinking(llm_backend: Backend) -> None:
    planner, script, probe = scripted_planner(llm_backend, lambda: chat_stream(plan_json()))
    script.capabilities = ["completion"]
    await probe.check()
    await planner.plan(REQUEST)
    assert "think" not in script.chats[0]


async def test_denoise_1_7_and_steps_0_from_the_model_are_clamped_with_warnings(
    llm_backend: Backend,
) -> None:
    planner, _, _ = scripted_planner(
        llm_backend, lambda: chat_stream(plan_json(denoise=1.7, steps=0))
    )
    plan = await planner.plan(REQUEST)
    assert plan.settings.denoise == 0.90
    assert plan.settings.steps == 20
    assert any("denoise 1.7" in w and "clamped" in w for w in plan.warnings)
    assert any("steps 0" in w and "clamped" in w for w in plan.warnings)


async def test_the_callers_override_wins_over_the_model(llm_backend: Backend) -> None:
    planner, _, _ = scripted_planner(llm_backend, lambda: chat_stream(plan_json()))
    request = PlanRequest(SOFA, Mode.IMAGE_TO_IMAGE, LIVING_ROOM, SamplerOverrides(denoise=0.3))
    plan = await planner.plan(request)
    assert plan.settings.denoise == 0.3
    assert any("denoise 0.3" in w for w in plan.warnings)


async def test_thinking_cut_off_by_num_predict_is_retried(llm_backend: Backend) -> None:
    planner, script, _ = scripted_planner(
        llm_backend, lambda: chat_stream("", done_reason="length"), lambda: chat_stream(plan_json())
    )
    plan = await planner.plan(REQUEST)
    assert plan.source is PlanSource.MODEL
    assert len(script.chats) == 2
    # A bad answer moves the seed on: the same seed would give the same answer.
    assert script.seeds[1] == script.seeds[0] + 1


async def test_truncated_json_with_done_reason_length_is_retried(llm_backend: Backend) -> None:
    planner, script, _ = scripted_planner(
        llm_backend,
        lambda: chat_stream(plan_json()[:40], done_reason="length"),
        lambda: chat_stream(plan_json()),
    )
    plan = await planner.plan(REQUEST)
    assert plan.source is PlanSource.MODEL
    assert len(script.chats) == 2


async def test_an_error_line_inside_the_stream_is_retried(llm_backend: Backend) -> None:
    def broken() -> httpx.Response:
        body = '{"message":{"role":"assistant","content":"{"},"done":false}\n{"error":"boom"}\n'
        return httpx.Response(200, text=body)

    planner, script, _ = scripted_planner(llm_backend, broken, lambda: chat_stream(plan_json()))
    plan = await planner.plan(REQUEST)
    assert plan.source is PlanSource.MODEL
    assert len(script.chats) == 2


async def test_an_empty_prompt_is_retried_and_then_left_to_the_rules(llm_backend: Backend) -> None:
    planner, script, _ = scripted_planner(
        llm_backend, lambda: chat_stream(plan_json(positive_prompt=" \x00 "))
    )
    plan = await planner.plan(REQUEST)
    assert plan.source is PlanSource.RULES
    assert len(script.chats) == 3
    assert any("empty prompt" in w for w in plan.warnings)


async def test_json_that_stays_invalid_falls_back_to_the_rules(llm_backend: Backend) -> None:
    planner, script, _ = scripted_planner(llm_backend, lambda: chat_stream('Sure! {"intent":'))
    plan = await planner.plan(REQUEST)
    assert plan.source is PlanSource.RULES
    assert plan.intent is Intent.COLOR_CHANGE
    assert len(script.chats) == 3


async def test_a_refused_request_is_not_retried(llm_backend: Backend) -> None:
    planner, script, _ = scripted_planner(
        llm_backend, lambda: httpx.Response(400, json={"error": 'invalid think value: "lots"'})
    )
    plan = await planner.plan(REQUEST)
    assert plan.source is PlanSource.RULES
    assert len(script.chats) == 1


async def test_a_model_that_is_not_pulled_is_a_failed_precondition_naming_it(
    llm_backend: Backend,
) -> None:
    planner, script, _ = scripted_planner(
        llm_backend, lambda: httpx.Response(404, json={"error": "model 'gpt-oss:20b' not found"})
    )
    with pytest.raises(FailedPreconditionError) as caught:
        await planner.plan(REQUEST)
    assert "gpt-oss:20b" in caught.value.message
    assert caught.value.metadata["model"] == "gpt-oss:20b"
    assert len(script.chats) == 1


async def test_the_policy_can_refuse_rules_plans(llm_backend: Backend) -> None:
    planner, _, _ = scripted_planner(
        llm_backend,
        lambda: httpx.Response(503, json={"error": "server busy"}),
        plan_policy=PlanPolicy.REQUIRE_MODEL,
    )
    with pytest.raises(BackendUnavailableError):
        await planner.plan(REQUEST)


async def test_text_to_image_from_the_model_for_an_edit_becomes_a_full_reimagining(
    llm_backend: Backend,
) -> None:
    planner, _, _ = scripted_planner(
        llm_backend, lambda: chat_stream(plan_json(intent="text_to_image", denoise=1.0))
    )
    plan = await planner.plan(REQUEST)
    assert plan.intent is Intent.FULL_REIMAGINING
    assert plan.settings.denoise == 0.95
    assert any("full reimagining" in w for w in plan.warnings)


async def test_text_to_image_mode_always_denoises_fully(llm_backend: Backend) -> None:
    planner, _, _ = scripted_planner(
        llm_backend, lambda: chat_stream(plan_json(intent="add_object"))
    )
    plan = await planner.plan(PlanRequest("A red fox in the snow", Mode.TEXT_TO_IMAGE))
    assert plan.intent is Intent.TEXT_TO_IMAGE
    assert plan.settings.denoise == 1.0


async def test_an_overlong_model_prompt_is_cut_to_the_budget(llm_backend: Backend) -> None:
    long_prompt = " ".join(f"Detail {i} of the green velvet sofa." for i in range(300))
    planner, _, _ = scripted_planner(
        llm_backend, lambda: chat_stream(plan_json(positive_prompt=long_prompt))
    )
    plan = await planner.plan(REQUEST)
    assert plan.positive_prompt.startswith("Detail 0 of the green velvet sofa.")
    assert plan.positive_prompt.endswith(".")
    assert default_tokenizer().count(plan.positive_prompt) <= 400
    assert any("truncated" in w for w in plan.warnings)


async def test_the_plan_is_logged_with_instruction_prompts_and_settings(
    llm_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    planner, _, _ = scripted_planner(llm_backend, lambda: chat_stream(plan_json()))
    long_instruction = SOFA + " " + "и оставь всё остальное как есть " * 50
    with caplog.at_level(logging.INFO, logger="services.planner.planner"):
        plan = await planner.plan(PlanRequest(long_instruction, Mode.IMAGE_TO_IMAGE, LIVING_ROOM))
    (record,) = [r for r in caplog.records if r.getMessage() == "plan"]
    assert record.__dict__["instruction"] == long_instruction.strip()
    assert record.__dict__["positive_prompt"] == plan.positive_prompt
    assert record.__dict__["negative_prompt"] == plan.negative_prompt
    assert record.__dict__["settings"] == {
        "denoise": 0.85,
        "steps": 28,
        "cfg": 1.0,
        "guidance": 3.5,
        "sampler_name": "euler",
        "scheduler": "simple",
    }
