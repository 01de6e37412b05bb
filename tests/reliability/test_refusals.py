"""Refusals on the whole system keep their status, come before any work and cost nothing.

- a refusal echoing a megabyte-long caller value still reaches the caller as that
  refusal (gRPC drops oversized trailers, which looked like RESOURCE_EXHAUSTED);
- bytes that are not a protobuf message are INVALID_ARGUMENT, not UNKNOWN;
- the caller's limits are charged only once a request is valid, and ``Plan`` is
  limited like ``Generate``;
- a ``Generate`` while render is not SERVING is refused at once, before any model call.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2

from gateway.auth import hash_token
from gateway.limits import REASON_CONCURRENCY, REASON_VARIANT_RATE
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from imagegen.render.v1 import render_pb2
from services.common.errors import MAX_TEXT_BYTES, status_details
from standins.ollama.settings import FakeOllamaSettings
from tests.gateway.system import System, start_system
from tests.reliability.inputs import INSTRUCTION
from tests.reliability.invariants import wait_for_gateway_view
from tests.reliability.outcomes import Outcome, collect
from tests.reliability.tuning import PLANNER_MODEL

TOKEN = "limited-caller-token-0123456789"
BEARER = (("authorization", f"Bearer {TOKEN}"),)
MEGABYTE = "x" * (1024 * 1024)
RENDER_SERVICE = render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name


def txt2img(variants: int = 1, sampler_name: str | None = None) -> gateway_pb2.GenerateRequest:
    request = gateway_pb2.GenerateRequest(
        instruction=INSTRUCTION,
        variants=variants,
        width=256,
        height=256,
        sampler=common_pb2.SamplerSettings(steps=2),
    )
    if sampler_name is not None:
        request.sampler.sampler_name = sampler_name
    return request


async def limited_system(stack: AsyncExitStack, tmp_path: Path, limits: str) -> System:
    """The system behind a gateway that knows one caller, with ``limits``."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{hash_token(TOKEN)} limited generate,plan {limits}\n")
    return await start_system(
        stack,
        ollama=FakeOllamaSettings(models=["llava:7b", PLANNER_MODEL]),
        auth_tokens_file=tokens,
    )


def retry_delay(details: list[object]) -> float | None:
    for detail in details:
        if isinstance(detail, error_details_pb2.RetryInfo):
            return float(detail.retry_delay.ToNanoseconds()) / 1e9
    return None


def reason(details: list[object]) -> str:
    infos = [d for d in details if isinstance(d, error_details_pb2.ErrorInfo)]
    return str(infos[0].reason) if infos else ""


async def test_a_refusal_echoing_a_megabyte_sampler_name_keeps_its_status(
    exit_stack: AsyncExitStack,
) -> None:
    system = await start_system(exit_stack)
    outcome = await collect(system.stub.Generate(txt2img(sampler_name=MEGABYTE), timeout=30))
    assert outcome.code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    ), (outcome.code, outcome.message[:200])
    assert len(outcome.message.encode()) <= MAX_TEXT_BYTES
    assert outcome.detail_types & {"BadRequest", "PreconditionFailure"}, outcome.details
    assert outcome.results == []


async def test_bytes_that_are_not_a_request_are_invalid_argument(
    exit_stack: AsyncExitStack,
) -> None:
    system = await start_system(exit_stack)
    async with grpc.aio.insecure_channel(system.gateway.address) as channel:
        raw = channel.unary_stream(
            "/imagegen.gateway.v1.GatewayService/Generate",
            request_serializer=lambda data: data,
            response_deserializer=lambda data: data,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            _ = [event async for event in raw(b"\xff\xff\xff\xff", timeout=10)]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "imagegen.gateway.v1.GenerateRequest" in (caught.value.details() or "")
    assert system.ollama_chats("") == 0


async def test_an_invalid_request_is_refused_before_the_limits_and_costs_nothing(
    exit_stack: AsyncExitStack, tmp_path: Path
) -> None:
    system = await limited_system(exit_stack, tmp_path, "variants_per_minute=4")
    invalid = await collect(system.stub.Generate(txt2img(variants=1000), metadata=BEARER))
    whole_allowance = await collect(
        system.stub.Generate(txt2img(variants=4), metadata=BEARER, timeout=30)
    )
    over = await collect(system.stub.Generate(txt2img(variants=1), metadata=BEARER))

    assert invalid.code == grpc.StatusCode.INVALID_ARGUMENT, invalid.message
    assert invalid.detail_types == {"BadRequest"}
    assert whole_allowance.code == grpc.StatusCode.OK, whole_allowance.message
    assert len(whole_allowance.results) == 4
    assert over.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason(list(over.details)) == REASON_VARIANT_RATE


async def test_concurrent_plans_beyond_the_callers_limit_are_refused_with_retry_info(
    exit_stack: AsyncExitStack, tmp_path: Path
) -> None:
    system = await limited_system(exit_stack, tmp_path, "max_concurrent=2")
    # Each plan waits a second at the planner model, so all of them overlap.
    system.ollama.fake.faults.add(kind="delay", delay_s=1.0, model=PLANNER_MODEL)

    async def plan(index: int) -> grpc.StatusCode | list[object]:
        request = gateway_pb2.PlanRequest(instruction=f"{INSTRUCTION} {index}")
        try:
            await system.stub.Plan(request, metadata=BEARER, timeout=30)
        except grpc.aio.AioRpcError as e:
            return (
                list(status_details(e))
                if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                else e.code()
            )
        return grpc.StatusCode.OK

    answers = await asyncio.gather(*(plan(i) for i in range(8)))

    assert answers.count(grpc.StatusCode.OK) == 2, answers
    refusals = [a for a in answers if isinstance(a, list)]
    assert len(refusals) == 6, answers
    for details in refusals:
        assert reason(details) == REASON_CONCURRENCY
        assert retry_delay(details) is not None
    assert system.ollama_chats(PLANNER_MODEL.split(":")[0]) == 2


async def test_generate_is_refused_at_once_while_render_is_not_serving(
    exit_stack: AsyncExitStack,
) -> None:
    system = await start_system(exit_stack)
    await system.comfyui.stop()
    await wait_for_gateway_view(system, RENDER_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    system.ollama.fake.reset()

    outcome: Outcome = await collect(system.stub.Generate(txt2img(), timeout=30))

    assert outcome.code == grpc.StatusCode.UNAVAILABLE, outcome.message
    assert "render" in outcome.message
    (info,) = [d for d in outcome.details if isinstance(d, error_details_pb2.ErrorInfo)]
    assert info.metadata["backend"] == "render"
    assert outcome.events == []
    assert system.ollama.fake.requests_to("/api/chat") == []
    assert system.ollama.fake.requests_to("/api/generate") == []
