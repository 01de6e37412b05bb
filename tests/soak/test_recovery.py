"""Recovery after a long outage of a downstream service (slow: part of ``make soak``).

When the render service has been down for half a minute and comes back, callers should
be served again within moments — not fail with UNAVAILABLE (after paying for an analysis
and a plan each) until the gateway's channel gets round to reconnecting.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.downstream import RENDER_SERVICE
from services.render.app import create_server as create_render
from services.render.settings import RenderSettings
from tests.gateway.system import start_system, stop_host
from tests.reliability.inputs import img2img
from tests.reliability.invariants import eventually
from tests.reliability.outcomes import generate

pytestmark = [pytest.mark.soak, pytest.mark.timeout(180)]


async def _serving(address: str) -> bool:
    """Whether the render service at ``address`` answers its health check SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=RENDER_SERVICE), timeout=1.0
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


OUTAGE_S = 30.0
BACK_WITHIN_S = 2.0
"""A caller may be refused this long after the render service is SERVING again."""


async def test_requests_succeed_soon_after_the_render_service_returns(
    exit_stack: AsyncExitStack,
) -> None:
    system = await start_system(exit_stack, plan_reuse_window_s=0.0, health_poll_interval_s=2.0)
    assert (await generate(system.stub, img2img(index=1))).code == grpc.StatusCode.OK
    port = int(system.addresses["render"].rsplit(":", 1)[1])
    await stop_host(system.hosts["render"])
    await asyncio.sleep(OUTAGE_S)
    host = await create_render(
        RenderSettings(port=port, comfyui_urls=system.comfyui.url, readiness_interval_s=0.2)
    )
    await host.start()
    exit_stack.push_async_callback(stop_host, host)
    address = system.addresses["render"]
    await eventually(lambda: _serving(address), timeout_s=10, what="render SERVING")
    back = time.monotonic()
    index = 2

    async def served() -> bool:
        nonlocal index
        index += 1
        outcome = await generate(system.stub, img2img(index=index), deadline_s=10)
        return bool(outcome.code == grpc.StatusCode.OK)

    await eventually(served, timeout_s=BACK_WITHIN_S, what="a request was served")
    assert time.monotonic() - back <= BACK_WITHIN_S
