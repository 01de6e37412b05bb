"""The planner over gRPC against the Ollama stand-in: real server on port 0, real channel."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegen.common.v1 import common_pb2
from services.common.clip_tokenizer import default_tokenizer
from services.common.errors import status_details
from services.planner.intents import DENOISE_TABLE, Intent
from services.planner.schema import PLAN_SCHEMA
from services.planner.service import SERVICE_NAME
from services.planner.settings import PlanPolicy
from standins.ollama.faults import FaultKind
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings
from tests.common.llm.backends import probe_requests
from tests.planner.conftest import (
    SOFA,
    chat_bodies,
    living_room_proto,
    plan_json,
    plan_request,
    planner_server,
    planner_settings,
)

BUDGET = 400


def _tokens(text: str) -> int:
    return default_tokenizer().count(text)


def _bad_request_fields(error: grpc.aio.AioRpcError) -> list[str]:
    details = [d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)]
    return [v.field for d in details for v in d.field_violations]


async def test_the_russian_sofa_instruction_is_planned_by_the_model(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.script.queue(plan_json(denoise=0.97), model="gpt-oss:20b")
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    plan = response.plan
    assert plan.source == common_pb2.PLAN_SOURCE_MODEL
    assert plan.model == "gpt-oss:20b"
    assert plan.intent == common_pb2.EDIT_INTENT_COLOR_CHANGE
    color_change = DENOISE_TABLE[Intent.COLOR_CHANGE]
    assert plan.settings.denoise == pytest.approx(color_change.high)  # 0.97 clamped
    assert any("denoise" in w and "clamped" in w for w in plan.warnings)
    assert plan.positive_prompt.startswith("A dark green velvet sofa")
    assert plan.positive_prompt.isascii()
    assert _tokens(plan.positive_prompt) <= BUDGET
    assert plan.settings.cfg == 1.0 and plan.settings.sampler_name == "euler"
    for field in ("denoise", "steps", "cfg", "guidance", "sampler_name", "scheduler"):
        assert plan.settings.HasField(field)
    assert SOFA in chat_bodies(ollama)[-1]["messages"][-1]["content"]


@pytest.mark.llm_backends("ollama")
async def test_the_model_gets_the_schema_a_think_level_and_pinned_limits(
    ollama: RunningFakeOllama,
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    (body,) = chat_bodies(ollama)
    assert body["format"] == PLAN_SCHEMA
    assert body["think"] == "low"
    assert body["options"]["num_ctx"] == 8192 and body["options"]["num_predict"] == 3072
    assert SOFA in body["messages"][-1]["content"]


async def test_the_callers_denoise_override_wins_and_is_reported(
    ollama: RunningFakeOllama,
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto(), denoise=0.3))
    plan = response.plan
    assert plan.source == common_pb2.PLAN_SOURCE_MODEL
    assert plan.settings.denoise == pytest.approx(0.3)
    assert any("denoise 0.3" in w and "override" in w for w in plan.warnings)


async def test_stand_in_down_gives_a_rules_plan_from_the_intent_table(
    ollama: RunningFakeOllama,
) -> None:
    await ollama.stop()
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    plan = response.plan
    assert plan.source == common_pb2.PLAN_SOURCE_RULES
    assert plan.intent == common_pb2.EDIT_INTENT_COLOR_CHANGE
    assert plan.settings.denoise == pytest.approx(DENOISE_TABLE[Intent.COLOR_CHANGE].typical)
    assert plan.settings.denoise >= 0.75
    assert "sofa" in plan.positive_prompt and "green" in plan.positive_prompt
    assert plan.model == ""
    assert any("not in English" in w for w in plan.warnings)


async def test_an_unknown_instruction_gets_denoise_0_68_from_the_rules(
    ollama: RunningFakeOllama,
) -> None:
    await ollama.stop()
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(
            plan_request("Что-нибудь интересное", analysis=living_room_proto())
        )
    assert response.plan.intent == common_pb2.EDIT_INTENT_UNSPECIFIED
    assert response.plan.settings.denoise == pytest.approx(0.68)


async def test_a_5000_word_instruction_gives_a_prompt_within_the_budget(
    ollama: RunningFakeOllama,
) -> None:
    instruction = " ".join(["Перекрась диван в зелёный цвет и добавь подушки."] * 625)
    assert len(instruction.split()) == 5000
    await ollama.stop()
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(instruction, analysis=living_room_proto()))
    plan = response.plan
    assert plan.source == common_pb2.PLAN_SOURCE_RULES
    assert 0 < _tokens(plan.positive_prompt) <= BUDGET
    assert any("truncated" in w for w in plan.warnings)


async def test_a_5000_word_instruction_is_shortened_for_the_model(
    ollama: RunningFakeOllama,
) -> None:
    instruction = " ".join(["Make the sofa dark green velvet and keep the window."] * 500)
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(instruction, analysis=living_room_proto()))
    plan = response.plan
    assert plan.source == common_pb2.PLAN_SOURCE_MODEL
    assert _tokens(plan.positive_prompt) <= BUDGET
    assert any("the model was given the first" in w for w in plan.warnings)
    (body,) = chat_bodies(ollama)
    assert len(body["messages"][-1]["content"]) < 5000


async def test_invalid_json_once_is_retried(ollama: RunningFakeOllama) -> None:
    ollama.fake.faults.add(kind=FaultKind.MALFORMED_JSON, times=1)
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    assert response.plan.source == common_pb2.PLAN_SOURCE_MODEL
    assert len(chat_bodies(ollama)) == 2


async def test_json_that_stays_invalid_gives_a_rules_plan(ollama: RunningFakeOllama) -> None:
    ollama.fake.faults.add(kind=FaultKind.SCHEMA_VIOLATION)
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    assert response.plan.source == common_pb2.PLAN_SOURCE_RULES
    assert response.plan.intent == common_pb2.EDIT_INTENT_COLOR_CHANGE
    assert len(chat_bodies(ollama)) == 3
    assert any("invalid" in w for w in response.plan.warnings)


async def test_server_errors_are_retried_within_the_deadline(ollama: RunningFakeOllama) -> None:
    ollama.fake.faults.add(kind=FaultKind.ERROR, status=500, times=2)
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto()), timeout=30.0)
    assert response.plan.source == common_pb2.PLAN_SOURCE_MODEL
    assert len(chat_bodies(ollama)) == 3


async def test_a_slow_model_leaves_time_for_a_rules_plan_within_the_deadline(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind=FaultKind.DELAY, delay_s=30.0)
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto()), timeout=1.0)
    assert response.plan.source == common_pb2.PLAN_SOURCE_RULES
    assert any("timed out" in w for w in response.plan.warnings)


async def test_an_error_in_the_middle_of_the_stream_is_retried(ollama: RunningFakeOllama) -> None:
    ollama.fake.faults.add(kind=FaultKind.STREAM_ERROR, after_lines=2, times=1)
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    assert response.plan.source == common_pb2.PLAN_SOURCE_MODEL
    assert len(chat_bodies(ollama)) == 2


async def test_a_model_that_is_not_pulled_is_a_failed_precondition() -> None:
    async with (
        run_fake_ollama(FakeOllamaSettings(models=["llava:latest"]), port=0) as running,
        planner_server(planner_settings(running.url)) as (_, stub),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "gpt-oss:20b" in (caught.value.details() or "")
    infos = [d for d in status_details(caught.value) if isinstance(d, error_details_pb2.ErrorInfo)]
    assert infos and infos[0].metadata["model"] == "gpt-oss:20b"
    assert len(chat_bodies(running)) == 1


async def test_the_policy_can_answer_unavailable_instead_of_rules(
    ollama: RunningFakeOllama,
) -> None:
    await ollama.stop()
    settings = planner_settings(ollama.url, plan_policy=PlanPolicy.REQUIRE_MODEL)
    async with planner_server(settings) as (_, stub):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_text_to_image_plans_without_an_analysis_at_full_denoise(
    ollama: RunningFakeOllama,
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request("A red fox in the snow at dusk"))
    plan = response.plan
    assert plan.intent == common_pb2.EDIT_INTENT_TEXT_TO_IMAGE
    assert plan.settings.denoise == 1.0
    assert plan.source == common_pb2.PLAN_SOURCE_MODEL
    assert "Mode: text-to-image" in chat_bodies(ollama)[0]["messages"][-1]["content"]


async def test_text_to_image_by_rules_is_at_full_denoise(ollama: RunningFakeOllama) -> None:
    await ollama.stop()
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request("Рыжая лиса в снегу"))
    assert response.plan.intent == common_pb2.EDIT_INTENT_TEXT_TO_IMAGE
    assert response.plan.settings.denoise == 1.0
    assert response.plan.source == common_pb2.PLAN_SOURCE_RULES


async def test_image_to_image_without_an_analysis_is_planned_with_a_warning(
    ollama: RunningFakeOllama,
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(
            plan_request(mode=common_pb2.GENERATION_MODE_IMAGE_TO_IMAGE)
        )
    assert response.plan.intent != common_pb2.EDIT_INTENT_TEXT_TO_IMAGE
    assert any("no analysis" in w for w in response.plan.warnings)


@pytest.mark.parametrize("instruction", ["", "   \n\t ", "\x00\x01\u200b", "x" * 65537])
async def test_an_unusable_instruction_is_invalid_argument_naming_the_field(
    ollama: RunningFakeOllama, instruction: str
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PlanPrompt(plan_request(instruction))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_request_fields(caught.value) == ["instruction"]
    assert chat_bodies(ollama) == []


async def test_a_nan_override_is_invalid_argument_naming_the_field(
    ollama: RunningFakeOllama,
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PlanPrompt(plan_request(guidance=float("nan")))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_request_fields(caught.value) == ["overrides.guidance"]


async def test_out_of_range_overrides_are_clamped_with_warnings(
    ollama: RunningFakeOllama,
) -> None:
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(
            plan_request(analysis=living_room_proto(), steps=0, denoise=1.5, cfg=50.0)
        )
    settings = response.plan.settings
    assert (settings.steps, settings.denoise, settings.cfg) == (1, 1.0, 30.0)
    assert sum("clamped" in w for w in response.plan.warnings) >= 3


async def test_health_follows_ollama_and_requests_still_get_plans(
    ollama: RunningFakeOllama,
) -> None:
    settings = planner_settings(ollama.url, readiness_interval_s=0.05)
    async with planner_server(settings) as (host, stub):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
            seen = []
            async for reply in watch:
                seen.append(reply.status)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    await ollama.stop()
                elif seen.count(health_pb2.HealthCheckResponse.SERVING):
                    break
            watch.cancel()
        response = await stub.PlanPrompt(plan_request(analysis=living_room_proto()))
    assert seen[-2:] == [
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    ]
    assert response.plan.source == common_pb2.PLAN_SOURCE_RULES
    assert probe_requests(ollama)
