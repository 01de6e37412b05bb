"""Every call carries one request id, is logged once and counted once."""

from __future__ import annotations

import io
import json
from typing import Any

import grpc
import grpc.aio
import pytest
from prometheus_client import REGISTRY

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2
from imagegen.vision.v1 import vision_pb2
from services.common.errors import NotFoundError
from services.common.interceptors import annotate_call
from services.common.logs import get_logger, request_id_var
from tests.common.conftest import (
    VISION_SERVICE,
    ProbeRender,
    ProbeVision,
    ServeFactory,
    open_channel,
    render_stub,
    vision_stub,
)

log = get_logger("tests.handler")


async def log_and_answer(
    request: vision_pb2.AnalyzeImageRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> vision_pb2.AnalyzeImageResponse:
    log.info("handling", extra={"stage": "analysis"})
    return vision_pb2.AnalyzeImageResponse(
        analysis=common_pb2.ImageAnalysis(description=request_id_var.get())
    )


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def trailer(metadata: Any, key: str = "x-request-id") -> str | None:
    return next((v for k, v in metadata or () if k == key), None)


async def test_request_id_sent_comes_back_and_marks_the_handler_log_line(
    serve: ServeFactory, log_lines: io.StringIO
) -> None:
    async with serve(ProbeVision(log_and_answer)) as server, open_channel(server) as channel:
        call = vision_stub(channel).AnalyzeImage(
            vision_pb2.AnalyzeImageRequest(), metadata=(("x-request-id", "req-42"),), timeout=5
        )
        await call
        assert trailer(await call.trailing_metadata()) == "req-42"
    (line,) = [entry for entry in json_lines(log_lines) if entry["message"] == "handling"]
    assert line["request_id"] == "req-42"
    assert (line["logger"], line["level"], line["service"], line["stage"]) == (
        "tests.handler",
        "INFO",
        "probe",
        "analysis",
    )


async def test_generated_request_id_is_returned_when_none_is_sent(serve: ServeFactory) -> None:
    # A bare channel: the client interceptor would otherwise make one up itself.
    async with (
        serve(ProbeVision(log_and_answer)) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        call = vision_stub(channel).AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=5)
        response = await call
        returned = trailer(await call.trailing_metadata())
    assert returned is not None and len(returned) == 32
    assert response.analysis.description == returned


async def test_request_id_is_returned_on_error(serve: ServeFactory) -> None:
    async def missing(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
        raise NotFoundError("nothing here")

    async with serve(ProbeVision(missing)) as server, open_channel(server) as channel:
        stub = vision_stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.AnalyzeImage(
                vision_pb2.AnalyzeImageRequest(), metadata=(("x-request-id", "r-err"),), timeout=5
            )
    assert trailer(caught.value.trailing_metadata()) == "r-err"


async def test_request_id_is_returned_on_a_stream(serve: ServeFactory) -> None:
    event = render_pb2.RenderResponse(progress=common_pb2.RenderProgress(step=1, total_steps=2))
    async with serve(render=ProbeRender([event])) as server, open_channel(server) as channel:
        call = render_stub(channel).Render(
            render_pb2.RenderRequest(), metadata=(("x-request-id", "r-stream"),), timeout=5
        )
        assert [e async for e in call] == [event]
        assert trailer(await call.trailing_metadata()) == "r-stream"


async def test_unsafe_request_id_is_replaced(serve: ServeFactory) -> None:
    async with serve(ProbeVision(log_and_answer)) as server, open_channel(server) as channel:
        call = vision_stub(channel).AnalyzeImage(
            vision_pb2.AnalyzeImageRequest(),
            metadata=(("x-request-id", "not a token; " + "x" * 200),),
            timeout=5,
        )
        await call
        returned = trailer(await call.trailing_metadata())
    assert returned is not None and returned != "not a token; " + "x" * 200


async def test_client_channel_forwards_the_current_request_id(serve: ServeFactory) -> None:
    async with (
        serve(ProbeVision(log_and_answer)) as downstream,
        open_channel(downstream) as downstream_channel,
    ):
        downstream_stub = vision_stub(downstream_channel)

        async def relay(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
            response: vision_pb2.AnalyzeImageResponse = await downstream_stub.AnalyzeImage(
                request, timeout=5
            )
            return response

        async with serve(ProbeVision(relay)) as upstream, open_channel(upstream) as channel:
            response = await vision_stub(channel).AnalyzeImage(
                vision_pb2.AnalyzeImageRequest(), metadata=(("x-request-id", "hop-1"),), timeout=5
            )
    assert response.analysis.description == "hop-1"


async def test_client_channel_forwards_the_request_id_on_streams(serve: ServeFactory) -> None:
    seen: list[str] = []

    class Recording(ProbeRender):
        async def Render(self, request: Any, context: Any) -> Any:
            seen.append(request_id_var.get())
            yield render_pb2.RenderResponse()

    async with serve(render=Recording([])) as server, open_channel(server) as channel:
        token = request_id_var.set("from-gateway")
        try:
            call = render_stub(channel).Render(render_pb2.RenderRequest(), timeout=5)
            _ = [e async for e in call]
        finally:
            request_id_var.reset(token)
    assert seen == ["from-gateway"]


async def test_access_log_line_has_method_code_duration_and_peer(
    serve: ServeFactory, log_lines: io.StringIO
) -> None:
    async with serve(ProbeVision(log_and_answer)) as server, open_channel(server) as channel:
        await vision_stub(channel).AnalyzeImage(
            vision_pb2.AnalyzeImageRequest(), metadata=(("x-request-id", "acc-1"),), timeout=5
        )
    (line,) = [
        e
        for e in json_lines(log_lines)
        if e["logger"] == "imagegen.access" and e.get("method", "").endswith("/AnalyzeImage")
    ]
    assert line["code"] == "OK"
    assert line["request_id"] == "acc-1"
    assert isinstance(line["duration_ms"], float)
    assert "127.0.0.1" in line["peer"]


async def test_rpc_histogram_counts_calls_by_method_and_code(serve: ServeFactory) -> None:
    async def missing(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
        raise NotFoundError("nothing here")

    labels = {"service": VISION_SERVICE, "method": "AnalyzeImage", "code": "NOT_FOUND"}
    before = REGISTRY.get_sample_value("imagegen_rpc_seconds_count", labels) or 0.0
    async with serve(ProbeVision(missing)) as server, open_channel(server) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await vision_stub(channel).AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=5)
    assert REGISTRY.get_sample_value("imagegen_rpc_seconds_count", labels) == before + 1


GARBAGE = b"\xff\xff\xff\xff"
"""Not a protobuf message of any type: a field tag with a continuation that never ends."""


def identity(data: bytes) -> bytes:
    return data


async def test_a_malformed_request_is_invalid_argument_logged_and_counted(
    serve: ServeFactory, log_lines: io.StringIO
) -> None:
    handled: list[Any] = []

    async def record(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
        handled.append(request)
        return vision_pb2.AnalyzeImageResponse()

    labels = {"service": VISION_SERVICE, "method": "AnalyzeImage", "code": "INVALID_ARGUMENT"}
    before = REGISTRY.get_sample_value("imagegen_rpc_seconds_count", labels) or 0.0
    async with serve(ProbeVision(record)) as server, open_channel(server) as channel:
        raw = channel.unary_unary(
            f"/{VISION_SERVICE}/AnalyzeImage",
            request_serializer=identity,
            response_deserializer=identity,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw(GARBAGE, metadata=(("x-request-id", "garbage-1"),), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "imagegen.vision.v1.AnalyzeImageRequest" in (caught.value.details() or "")
    assert trailer(caught.value.trailing_metadata()) == "garbage-1"
    assert handled == []
    (line,) = [
        e
        for e in json_lines(log_lines)
        if e["logger"] == "imagegen.access" and e.get("method", "").endswith("/AnalyzeImage")
    ]
    assert (line["code"], line["reason"], line["request_id"]) == (
        "INVALID_ARGUMENT",
        "MALFORMED_REQUEST",
        "garbage-1",
    )
    assert REGISTRY.get_sample_value("imagegen_rpc_seconds_count", labels) == before + 1


async def test_a_malformed_request_to_a_stream_is_invalid_argument(serve: ServeFactory) -> None:
    render = ProbeRender([render_pb2.RenderResponse()])
    async with serve(render=render) as server, open_channel(server) as channel:
        raw = channel.unary_stream(
            "/imagegen.render.v1.RenderService/Render",
            request_serializer=identity,
            response_deserializer=identity,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            _ = [event async for event in raw(GARBAGE, timeout=5)]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_malformed_message_in_a_request_stream_is_invalid_argument(
    serve: ServeFactory,
) -> None:
    async with serve(ProbeVision()) as server, open_channel(server) as channel:
        raw = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=identity,
            response_deserializer=identity,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            _ = [answer async for answer in raw(iter([GARBAGE]), timeout=5)]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ServerReflectionRequest" in (caught.value.details() or "")


async def test_a_handler_annotates_its_access_log_line(
    serve: ServeFactory, log_lines: io.StringIO
) -> None:
    async def annotated(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
        annotate_call(caller="studio-web")
        raise NotFoundError("nothing here")

    async with serve(ProbeVision(annotated)) as server, open_channel(server) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await vision_stub(channel).AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=5)
    (line,) = [e for e in json_lines(log_lines) if e["logger"] == "imagegen.access"]
    assert (line["caller"], line["code"], line["reason"]) == (
        "studio-web",
        "NOT_FOUND",
        "NOT_FOUND",
    )
