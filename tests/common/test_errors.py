"""Domain errors reach the caller as one gRPC status each, with google.rpc details."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2
from imagegen.vision.v1 import vision_pb2
from services.common.errors import (
    MAX_STATUS_BYTES,
    MAX_TEXT_BYTES,
    BackendFailedError,
    BackendUnavailableError,
    DeadlineExceededError,
    DownstreamError,
    FailedPreconditionError,
    FieldViolation,
    ImagegenError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionViolation,
    ResourceExhaustedError,
    status_details,
    to_rpc_status,
)
from tests.common.conftest import (
    ProbeRender,
    ProbeVision,
    ServeFactory,
    open_channel,
    render_stub,
    vision_stub,
)


def raising(error: BaseException) -> Any:
    async def handler(
        request: vision_pb2.AnalyzeImageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> vision_pb2.AnalyzeImageResponse:
        raise error

    return handler


async def call_failing(serve: ServeFactory, error: BaseException) -> grpc.aio.AioRpcError:
    return await call_handler(serve, raising(error))


async def call_handler(serve: ServeFactory, handler: Any) -> grpc.aio.AioRpcError:
    async with serve(ProbeVision(handler)) as server, open_channel(server) as channel:
        stub = vision_stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=5)
    return caught.value


def error_info(details: list[Any]) -> error_details_pb2.ErrorInfo:
    (info,) = [d for d in details if isinstance(d, error_details_pb2.ErrorInfo)]
    return info


async def test_invalid_argument_carries_bad_request_naming_each_field(serve: ServeFactory) -> None:
    error = InvalidArgumentError(
        "two fields are wrong",
        [FieldViolation("instruction", "is empty"), FieldViolation("variants", "above 8")],
    )
    e = await call_failing(serve, error)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.details() == "two fields are wrong"
    (bad_request,) = status_details(e)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("instruction", "is empty"),
        ("variants", "above 8"),
    ]


async def test_failed_precondition_carries_error_info_and_violations(serve: ServeFactory) -> None:
    error = FailedPreconditionError(
        "LoRA not installed",
        reason="LORA_NOT_FOUND",
        metadata={"lora": "x.safetensors"},
        violations=[PreconditionViolation("LORA", "x.safetensors", "not on the server")],
    )
    e = await call_failing(serve, error)
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = status_details(e)
    info = error_info(details)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "LORA_NOT_FOUND",
        "imagegen",
        {"lora": "x.safetensors"},
    )
    (failure,) = [d for d in details if isinstance(d, error_details_pb2.PreconditionFailure)]
    assert failure.violations[0].subject == "x.safetensors"


async def test_backend_unavailable_names_the_backend(serve: ServeFactory) -> None:
    e = await call_failing(serve, BackendUnavailableError("Ollama is down", backend="ollama"))
    assert e.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(status_details(e))
    assert (info.reason, dict(info.metadata)) == ("BACKEND_UNAVAILABLE", {"backend": "ollama"})


async def test_resource_exhausted_carries_retry_delay(serve: ServeFactory) -> None:
    e = await call_failing(serve, ResourceExhaustedError("queue full", retry_after_s=2.5))
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    (retry,) = [d for d in status_details(e) if isinstance(d, error_details_pb2.RetryInfo)]
    assert retry.retry_delay.ToMilliseconds() == 2500


async def test_backend_failed_is_aborted_with_the_failing_node(serve: ServeFactory) -> None:
    error = BackendFailedError(
        "KSampler failed",
        backend="comfyui",
        reason="COMFYUI_EXECUTION_ERROR",
        metadata={"node_id": "3"},
    )
    e = await call_failing(serve, error)
    assert e.code() == grpc.StatusCode.ABORTED
    info = error_info(status_details(e))
    assert dict(info.metadata) == {"node_id": "3", "backend": "comfyui"}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFoundError("no such job"), grpc.StatusCode.NOT_FOUND),
        (DeadlineExceededError("no time left to render"), grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
async def test_each_simple_error_maps_to_its_status(
    serve: ServeFactory, error: ImagegenError, code: grpc.StatusCode
) -> None:
    e = await call_failing(serve, error)
    assert (e.code(), e.details()) == (code, error.message)
    assert error_info(status_details(e)).reason == code.name


async def test_unexpected_exception_is_internal_naming_its_type(serve: ServeFactory) -> None:
    e = await call_failing(serve, ZeroDivisionError("division by zero"))
    assert e.code() == grpc.StatusCode.INTERNAL
    assert "ZeroDivisionError" in (e.details() or "")


async def test_error_raised_mid_stream_ends_the_stream_with_its_status(
    serve: ServeFactory,
) -> None:
    queued = render_pb2.RenderResponse(queued=common_pb2.RenderQueued(variant=0, position=2))
    render = ProbeRender([queued], BackendUnavailableError("ComfyUI went away", backend="comfyui"))
    async with serve(render=render) as server, open_channel(server) as channel:
        call = render_stub(channel).Render(render_pb2.RenderRequest(), timeout=5)
        received = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for event in call:
                received.append(event)
    assert received == [queued]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(status_details(caught.value)).metadata["backend"] == "comfyui"


async def test_downstream_error_relays_code_message_and_details(serve: ServeFactory) -> None:
    downstream_error = InvalidArgumentError("bad image", [FieldViolation("image.data", "is empty")])
    async with (
        serve(ProbeVision(raising(downstream_error))) as downstream,
        open_channel(downstream) as downstream_channel,
    ):
        downstream_stub = vision_stub(downstream_channel)

        async def relay(
            request: vision_pb2.AnalyzeImageRequest, context: grpc.aio.ServicerContext[Any, Any]
        ) -> vision_pb2.AnalyzeImageResponse:
            try:
                response: vision_pb2.AnalyzeImageResponse = await downstream_stub.AnalyzeImage(
                    request, timeout=5
                )
            except grpc.aio.AioRpcError as e:
                raise DownstreamError.from_rpc_error(e) from e
            return response

        e = await call_handler(serve, relay)

    assert (e.code(), e.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "bad image")
    (bad_request,) = status_details(e)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field == "image.data"


async def test_cancelled_call_cancels_the_handler_instead_of_swallowing_it(
    serve: ServeFactory,
) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(
        request: vision_pb2.AnalyzeImageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> vision_pb2.AnalyzeImageResponse:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    async with serve(ProbeVision(hang)) as server, open_channel(server) as channel:
        call = vision_stub(channel).AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=5)
        await started.wait()
        call.cancel()
        async with asyncio.timeout(5):
            await cancelled.wait()
        assert await call.code() == grpc.StatusCode.CANCELLED


def test_status_details_is_empty_without_details() -> None:
    class PlainError(grpc.RpcError):  # type: ignore[misc]  # grpc ships no type hints
        def trailing_metadata(self) -> tuple[()]:
            return ()

    assert status_details(PlainError()) == []


async def test_servicer_abort_keeps_its_own_status(serve: ServeFactory) -> None:
    async def aborting(
        request: vision_pb2.AnalyzeImageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> vision_pb2.AnalyzeImageResponse:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")
        raise AssertionError("unreachable")

    e = await call_handler(serve, aborting)
    assert (e.code(), e.details()) == (grpc.StatusCode.PERMISSION_DENIED, "not yours")


MEGABYTE_VALUE = "x" * (1024 * 1024)


async def test_a_refusal_echoing_a_megabyte_value_stays_invalid_argument(
    serve: ServeFactory,
) -> None:
    description = f"{MEGABYTE_VALUE!r} is not a template name"
    error = InvalidArgumentError(
        f"workflow {MEGABYTE_VALUE!r} is not a template name",
        [FieldViolation("workflow", description)],
    )
    e = await call_failing(serve, error)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = e.details() or ""
    assert len(message.encode()) <= MAX_TEXT_BYTES
    assert message.startswith("workflow 'xxx")
    assert message.endswith(f"… ({len(error.message)} chars)")
    (bad_request,) = status_details(e)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    (violation,) = bad_request.field_violations
    assert violation.field == "workflow"
    assert len(violation.description.encode()) <= MAX_TEXT_BYTES
    assert violation.description.endswith(f"… ({len(description)} chars)")


async def test_a_thousand_long_violations_still_reach_the_caller_as_a_bad_request(
    serve: ServeFactory,
) -> None:
    violations = [FieldViolation(f"loras[{i}].name", "я" * 5000) for i in range(1000)]
    e = await call_failing(serve, InvalidArgumentError("many bad names", violations))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.details() == "many bad names"
    (bad_request,) = status_details(e)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field == "loras[0].name"
    assert bad_request.field_violations[0].description.endswith("… (5000 chars)")


def test_every_status_fits_its_bound_and_short_ones_are_untouched() -> None:
    short = FailedPreconditionError(
        "LoRA not installed",
        reason="LORA_NOT_FOUND",
        metadata={"lora": "x.safetensors"},
        violations=[PreconditionViolation("LORA", "x.safetensors", "not on the server")],
    )
    long = FailedPreconditionError(
        "ж" * 100_000,
        reason="LORA_NOT_FOUND",
        metadata={f"key{i}": "v" * 10_000 for i in range(100)},
        violations=[PreconditionViolation("LORA", "s" * 10_000, "d" * 10_000)] * 100,
    )
    short_status, long_status = to_rpc_status(short), to_rpc_status(long)
    assert short_status.details == "LoRA not installed"
    (key, value), *_ = long_status.trailing_metadata
    assert key == "grpc-status-details-bin"
    assert len(value) <= MAX_STATUS_BYTES
    assert len(long_status.details.encode()) <= MAX_TEXT_BYTES


async def test_a_relayed_downstream_status_is_bounded_too(serve: ServeFactory) -> None:
    relayed = DownstreamError.from_rpc_error(
        await call_failing(serve, InvalidArgumentError("bad image", [FieldViolation("f", "d")]))
    )
    relayed.message = "y" * 100_000
    e = await call_failing(serve, relayed)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (e.details() or "").endswith("… (100000 chars)")
    (bad_request,) = status_details(e)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
