"""Fixtures for the shared-library tests: real grpc.aio servers on 127.0.0.1, port 0."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import grpc.aio
import pytest
from PIL import Image

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2, render_pb2_grpc
from imagegen.vision.v1 import vision_pb2, vision_pb2_grpc
from services.common.channels import create_channel
from services.common.images import validate_image
from services.common.logs import configure_logging
from services.common.server import GrpcServer
from services.common.settings import ServerSettings

VISION_SERVICE = vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name
RENDER_SERVICE = render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name

AnalyzeHandler = Callable[
    [vision_pb2.AnalyzeImageRequest, grpc.aio.ServicerContext[Any, Any]],
    Awaitable[vision_pb2.AnalyzeImageResponse],
]


async def describe_image(
    request: vision_pb2.AnalyzeImageRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> vision_pb2.AnalyzeImageResponse:
    """A thin servicer body: validate the image, report what it is."""
    image = validate_image(
        request.image.data, field="image.data", max_bytes=32 * 1024 * 1024, max_side=4096
    )
    return vision_pb2.AnalyzeImageResponse(
        analysis=common_pb2.ImageAnalysis(
            description=image.format, width=image.width, height=image.height
        )
    )


class ProbeVision(vision_pb2_grpc.VisionServiceServicer):
    """A VisionService whose AnalyzeImage runs whatever the test hands it."""

    def __init__(self, handler: AnalyzeHandler = describe_image) -> None:
        self.handler = handler

    async def AnalyzeImage(
        self, request: vision_pb2.AnalyzeImageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> vision_pb2.AnalyzeImageResponse:
        return await self.handler(request, context)


class ProbeRender(render_pb2_grpc.RenderServiceServicer):
    """A RenderService streaming the events the test hands it, then raising its error."""

    def __init__(
        self, events: list[render_pb2.RenderResponse], error: BaseException | None = None
    ) -> None:
        self.events = events
        self.error = error

    async def Render(
        self, request: render_pb2.RenderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[render_pb2.RenderResponse]:
        for event in self.events:
            yield event
        if self.error is not None:
            raise self.error


def vision_stub(channel: grpc.aio.Channel) -> Any:
    """A VisionService stub (the generated stubs carry no type hints)."""
    return vision_pb2_grpc.VisionServiceStub(channel)  # type: ignore[no-untyped-call]


def render_stub(channel: grpc.aio.Channel) -> Any:
    """A RenderService stub."""
    return render_pb2_grpc.RenderServiceStub(channel)  # type: ignore[no-untyped-call]


ServeFactory = Callable[..., AbstractAsyncContextManager[GrpcServer]]


@pytest.fixture
def serve() -> ServeFactory:
    """Starts a GrpcServer on 127.0.0.1:0 with the given servicers; stops it after."""

    @asynccontextmanager
    async def serve_(
        vision: ProbeVision | None = None,
        render: ProbeRender | None = None,
        *,
        ready: bool = True,
        **settings: Any,
    ) -> AsyncIterator[GrpcServer]:
        names = [VISION_SERVICE] if vision else []
        names += [RENDER_SERVICE] if render else []
        server = GrpcServer(
            ServerSettings(host="127.0.0.1", port=0, grace_period_s=1.0, **settings),
            service_names=names,
        )
        if vision:
            vision_pb2_grpc.add_VisionServiceServicer_to_server(vision, server.server)  # type: ignore[no-untyped-call]
        if render:
            render_pb2_grpc.add_RenderServiceServicer_to_server(render, server.server)  # type: ignore[no-untyped-call]
        await server.start()
        if ready:
            await server.set_ready(True)
        try:
            yield server
        finally:
            await server.stop(0)

    return serve_


@asynccontextmanager
async def open_channel(server: GrpcServer, **kwargs: Any) -> AsyncIterator[grpc.aio.Channel]:
    """A channel from services.common.channels to a started server."""
    kwargs.setdefault("max_message_bytes", server.settings.max_message_bytes)
    channel = create_channel(f"127.0.0.1:{server.port}", **kwargs)
    try:
        yield channel
    finally:
        await channel.close()


@contextmanager
def json_log_lines(service: str = "probe") -> Iterator[io.StringIO]:
    """Routes logging, as JSON, into a buffer; restores the root logger afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    buffer = io.StringIO()
    configure_logging("DEBUG", "json", service=service, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Routes logging, as JSON, into a buffer; restores the root logger afterwards."""
    with json_log_lines() as buffer:
        yield buffer


def encode(size: tuple[int, int], fmt: str, **save: Any) -> bytes:
    """A solid image of ``size`` encoded as ``fmt``."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (180, 120, 60)).save(buffer, fmt, **save)
    return buffer.getvalue()
