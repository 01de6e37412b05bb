"""VisionService over gRPC: a real server on port 0 in front of the Ollama stand-in."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegen.common.v1 import common_pb2
from imagegen.vision.v1 import vision_pb2, vision_pb2_grpc
from services.common.channels import create_channel
from services.common.errors import status_details
from services.vision.app import create_server
from services.vision.service import SERVICE_NAME
from standins.ollama.server import RunningFakeOllama
from tests.vision.conftest import (
    chat_requests,
    fixture_image,
    solid_png,
    two_colour_png,
    vision_settings,
)


@asynccontextmanager
async def vision_server(
    ollama: RunningFakeOllama, *, wait_ready: bool = True, **overrides: Any
) -> AsyncIterator[grpc.aio.Channel]:
    """The vision server on a free port, and a channel to it.

    Like a load balancer, it waits for SERVING before the first call unless told the
    server will not get there (model without vision, Ollama down).
    """
    settings = vision_settings(ollama.url, **overrides)
    host = await create_server(settings)
    port = await host.start()
    channel = create_channel(f"127.0.0.1:{port}", max_message_bytes=settings.max_message_bytes)
    try:
        if wait_ready:
            await _health_becomes(channel, health_pb2.HealthCheckResponse.SERVING)
        yield channel
    finally:
        await channel.close()
        await host.stop(0)


def _request(data: bytes, description: str | None = None) -> vision_pb2.AnalyzeImageRequest:
    request = vision_pb2.AnalyzeImageRequest(image=common_pb2.Image(data=data))
    if description is not None:
        request.description = description
    return request


def _stub(channel: grpc.aio.Channel) -> Any:
    return vision_pb2_grpc.VisionServiceStub(channel)  # type: ignore[no-untyped-call]


async def _analyze(
    channel: grpc.aio.Channel, data: bytes, **kwargs: Any
) -> common_pb2.ImageAnalysis:
    response: vision_pb2.AnalyzeImageResponse = await _stub(channel).AnalyzeImage(
        _request(data, **kwargs), timeout=10
    )
    return response.analysis


async def _health_becomes(channel: grpc.aio.Channel, wanted: int) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    call = stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    async for update in call:
        if update.status == wanted:
            call.cancel()
            return


async def test_analyze_image_answers_a_model_analysis_with_every_field(
    ollama: RunningFakeOllama,
) -> None:
    data = fixture_image("coffee.jpg")
    async with vision_server(ollama) as channel:
        analysis = await _analyze(channel, data)
    assert analysis.source == common_pb2.ANALYSIS_SOURCE_MODEL
    assert analysis.colors and analysis.materials and analysis.subjects and analysis.description
    assert (analysis.width, analysis.height) == (600, 400)
    assert analysis.image_sha256 == hashlib.sha256(data).hexdigest()
    assert analysis.model == "llava"
    assert not analysis.cached and not analysis.missing_fields


async def test_a_second_identical_call_is_served_from_the_cache(ollama: RunningFakeOllama) -> None:
    async with vision_server(ollama) as channel:
        await _analyze(channel, fixture_image("chelsea.jpg"))
        again = await _analyze(channel, fixture_image("chelsea.jpg"))
    assert again.cached and again.source == common_pb2.ANALYSIS_SOURCE_MODEL
    assert len(chat_requests(ollama)) == 1


async def test_twenty_concurrent_identical_calls_make_one_model_call(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind="delay", delay_s=0.2, times=1)
    async with vision_server(ollama) as channel:
        results = await asyncio.gather(
            *(_analyze(channel, fixture_image("coffee.jpg")) for _ in range(20))
        )
    assert len(chat_requests(ollama)) == 1
    assert all(r.source == common_pb2.ANALYSIS_SOURCE_MODEL for r in results)


async def test_health_is_serving_when_the_model_has_vision(ollama: RunningFakeOllama) -> None:
    async with vision_server(ollama, wait_ready=False) as channel:
        await _health_becomes(channel, health_pb2.HealthCheckResponse.SERVING)


async def test_health_turns_not_serving_when_ollama_stops_answering(
    ollama: RunningFakeOllama,
) -> None:
    async with vision_server(ollama, readiness_interval_s=0.05) as channel:
        await ollama.stop()
        await _health_becomes(channel, health_pb2.HealthCheckResponse.NOT_SERVING)


@pytest.mark.llm_backends("ollama")
async def test_a_text_only_model_gets_the_fallback_and_never_the_image(
    ollama: RunningFakeOllama,
) -> None:
    async with vision_server(ollama, wait_ready=False, model="gpt-oss:20b") as channel:
        analysis = await _analyze(channel, fixture_image("coffee.jpg"))
    assert analysis.source == common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK
    assert any("vision capability" in w for w in analysis.warnings)
    assert chat_requests(ollama) == []


@pytest.mark.llm_backends("ollama")
async def test_a_model_that_is_not_pulled_is_failed_precondition_naming_it(
    ollama: RunningFakeOllama,
) -> None:
    async with vision_server(ollama, wait_ready=False, model="llava:34b") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _analyze(channel, fixture_image("coffee.jpg"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ollama pull llava:34b" in (caught.value.details() or "")
    failures = [
        d
        for d in status_details(caught.value)
        if isinstance(d, error_details_pb2.PreconditionFailure)
    ]
    assert failures and failures[0].violations[0].subject == "llava:34b"


async def test_an_image_that_is_not_an_image_is_invalid_argument_naming_the_field(
    ollama: RunningFakeOllama,
) -> None:
    async with vision_server(ollama) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _analyze(channel, b"GIF89a" + b"\x00" * 32)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad_request,) = [
        d for d in status_details(caught.value) if isinstance(d, error_details_pb2.BadRequest)
    ]
    assert bad_request.field_violations[0].field == "image.data"
    assert chat_requests(ollama) == []


async def test_ollama_down_answers_the_fallback_flagged_with_a_warning(
    ollama: RunningFakeOllama,
) -> None:
    await ollama.stop()
    async with vision_server(ollama, wait_ready=False, retry_attempts=2) as channel:
        analysis = await _analyze(channel, two_colour_png((30, 150, 60), (245, 245, 245)))
    assert analysis.source == common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK
    assert set(analysis.colors) == {"green", "white"}
    assert analysis.warnings and not analysis.model


async def test_require_model_policy_with_ollama_down_is_unavailable(
    ollama: RunningFakeOllama,
) -> None:
    await ollama.stop()
    async with vision_server(
        ollama, wait_ready=False, analysis_policy="require_model", retry_attempts=1
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _analyze(channel, fixture_image("coffee.jpg"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "require_model" in (caught.value.details() or "")


async def test_a_caller_description_is_answered_without_the_model(
    ollama: RunningFakeOllama,
) -> None:
    async with vision_server(ollama) as channel:
        analysis = await _analyze(
            channel, fixture_image("coffee.jpg"), description="Чашка кофе на столе."
        )
    assert analysis.source == common_pb2.ANALYSIS_SOURCE_USER
    assert analysis.description == "Чашка кофе на столе."
    assert chat_requests(ollama) == []


async def test_a_blank_description_is_invalid_argument(ollama: RunningFakeOllama) -> None:
    async with vision_server(ollama) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _analyze(channel, fixture_image("coffee.jpg"), description="   ")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_callers_deadline_bounds_the_model_and_leaves_time_for_the_fallback(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.faults.add(kind="delay", delay_s=10.0)
    async with vision_server(ollama) as channel:
        response = await _stub(channel).AnalyzeImage(
            _request(fixture_image("coffee.jpg")), timeout=2.0
        )
    assert response.analysis.source == common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK


async def test_an_image_beyond_the_decode_budget_is_resource_exhausted_with_retry_info(
    ollama: RunningFakeOllama,
) -> None:
    # 2048² RGB: 20 MiB with the downscale's working copy, more than the smallest budget.
    first, second = (solid_png(2048, colour) for colour in ((1, 2, 3), (4, 5, 6)))
    async with vision_server(ollama, decode_budget_mb=16, decode_wait_s=0.0) as channel:
        stub = _stub(channel)
        answers = await asyncio.gather(
            stub.AnalyzeImage(_request(first), timeout=10),
            stub.AnalyzeImage(_request(second), timeout=10),
            return_exceptions=True,
        )
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(refused) == 1, answers
    assert refused[0].code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = status_details(refused[0])
    retry = [d for d in details if isinstance(d, error_details_pb2.RetryInfo)]
    assert retry and retry[0].retry_delay.ToTimedelta().total_seconds() > 0
    reasons = [d.reason for d in details if isinstance(d, error_details_pb2.ErrorInfo)]
    assert reasons == ["MEMORY_BUDGET"]
