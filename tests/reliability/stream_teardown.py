"""Does a server survive callers that cancel its response streams?

``python -m tests.reliability.stream_teardown`` starts a :class:`GrpcServer` (the shared
bootstrap, with its interceptor) serving a render stream that never ends, then five
times reads one response and cancels the call. A cancelled stream whose handler was
suspended at a ``yield`` is finalised later, with ``GeneratorExit``; the interceptor
must finish its bookkeeping without touching the call grpc has already released.

Exit status 0 when the server survived; a crash shows as a negative status (-11 for a
segmentation fault). Run in a child process, so a crash cannot take the test run down.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc.aio

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2, render_pb2_grpc
from services.common.server import GrpcServer
from services.common.settings import ServerSettings
from tests.gateway.system import stop_host

__all__ = ["CANCELLED_STREAMS", "SKIP_REASON", "main", "server_crashes"]

CANCELLED_STREAMS = 5
"""Streams opened and cancelled; one is enough to crash an affected server."""

SKIP_REASON = (
    "servers crash when a caller cancels a response stream "
    "(see test_cancelled_streams_leave_their_server_running); cancelling one here would "
    "take the whole test run down"
)
"""Why cells that cancel streams mid-flight are skipped while servers crash on it."""

_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def server_crashes() -> bool:
    """Runs this module in a child process; True when the child died (once per run)."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.reliability.stream_teardown"],
        cwd=_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    return child.returncode != 0


class EndlessRender(render_pb2_grpc.RenderServiceServicer):
    """Streams progress events until the caller goes away."""

    async def Render(  # gRPC method name
        self, request: render_pb2.RenderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[render_pb2.RenderResponse]:
        """One progress event after another, as fast as the caller takes them."""
        step = 0
        while True:
            step += 1
            yield render_pb2.RenderResponse(
                progress=common_pb2.RenderProgress(variant=0, step=step, total_steps=10**6)
            )


async def main() -> None:
    """Opens and cancels :data:`CANCELLED_STREAMS` streams, collecting garbage after each."""
    service = render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name
    host = GrpcServer(ServerSettings(port=0), service_names=[service])
    render_pb2_grpc.add_RenderServiceServicer_to_server(EndlessRender(), host.server)  # type: ignore[no-untyped-call]
    port = await host.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = render_pb2_grpc.RenderServiceStub(channel)  # type: ignore[no-untyped-call]
        for _ in range(CANCELLED_STREAMS):
            call = stub.Render(render_pb2.RenderRequest(), timeout=10)
            async for _ in call:
                break
            call.cancel()
            await asyncio.sleep(0.01)
            # Finalises the abandoned handler generator now rather than at some later GC.
            gc.collect()
            await asyncio.sleep(0.01)
    await stop_host(host)


if __name__ == "__main__":
    asyncio.run(main())
