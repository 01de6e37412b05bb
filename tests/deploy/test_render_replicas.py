"""Render replicas behind one multi-address target, as the gateway sees them in a cluster.

In Kubernetes the gateway dials ``dns:///render.imagegen.svc.cluster.local:50054``: a
headless Service name resolving to every ready render pod, balanced by ``round_robin``.
Here the same thing on loopback: three real render servers, each with its own ComfyUI
stand-in (one GPU each), behind ``127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`` (an
``ipv4:`` target, the resolver's answer written out). Counting the prompts each stand-in
received shows where the variants went.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.downstream import RENDER_SERVICE
from imagegen.gateway.v1 import gateway_pb2
from services.common.server import GrpcServer
from services.render.app import create_server as create_render
from services.render.settings import RenderSettings
from standins.comfyui.server import RunningFakeComfyUI, run_fake_comfyui
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.system import RunningGateway, start_gateway_in, start_system, stop_host

REPLICAS = 3
VARIANTS = 2


@dataclass
class Replica:
    """One render pod: the render server and its own ComfyUI."""

    host: GrpcServer
    comfyui: RunningFakeComfyUI
    address: str

    @property
    def prompts(self) -> int:
        """Prompts its ComfyUI was given: one per variant rendered here."""
        return self.comfyui.fake.counters.prompts_submitted


async def start_replicas(
    stack: AsyncExitStack, count: int, *, step_delay_s: float = 0.0
) -> list[Replica]:
    replicas = []
    for _ in range(count):
        comfyui = await stack.enter_async_context(
            run_fake_comfyui(FakeComfyUISettings(step_delay_s=step_delay_s), port=0)
        )
        host = await create_render(
            RenderSettings(port=0, comfyui_urls=comfyui.url, readiness_interval_s=0.2)
        )
        port = await host.start()
        stack.push_async_callback(stop_host, host)
        replicas.append(Replica(host, comfyui, f"127.0.0.1:{port}"))
    return replicas


async def wait_ready(replicas: list[Replica]) -> None:
    """Waits, as a readiness probe would, until every replica answers SERVING."""
    async with asyncio.timeout(15):
        for replica in replicas:
            async with grpc.aio.insecure_channel(replica.address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                check = health_pb2.HealthCheckRequest(service=RENDER_SERVICE)
                async for answer in stub.Watch(check):
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        break


async def gateway_over(stack: AsyncExitStack, replicas: list[Replica]) -> RunningGateway:
    """A gateway whose render address lists every replica, like a headless Service."""
    await wait_ready(replicas)
    system = await start_system(stack)
    return await start_gateway_in(
        stack,
        system,
        render_address=",".join(r.address for r in replicas),
        # Health checks share the channel and would shift the round-robin rotation.
        health_poll_interval_s=30.0,
        plan_reuse_window_s=0.0,
    )


def request(seed: int) -> gateway_pb2.GenerateRequest:
    return gateway_pb2.GenerateRequest(
        instruction="a lighthouse on a cliff at dusk, oil painting",
        width=256,
        height=256,
        variants=VARIANTS,
        seed=seed,
    )


async def generate(gateway: RunningGateway, seed: int) -> int:
    """Runs one Generate to its end; the number of variant results it streamed."""
    return await results_of(gateway.stub.Generate(request(seed), timeout=30))


async def results_of(call: AsyncIterator[gateway_pb2.GenerateResponse]) -> int:
    """The variant results still to come on a started Generate stream."""
    return sum([event.HasField("result") async for event in call])


@pytest.fixture
async def exit_stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def test_gateway_spreads_requests_over_every_replica_and_recovers_when_one_goes(
    exit_stack: AsyncExitStack,
) -> None:
    replicas = await start_replicas(exit_stack, REPLICAS)
    gateway = await gateway_over(exit_stack, replicas)

    for seed in range(0, 6 * VARIANTS, VARIANTS):
        assert await generate(gateway, seed) == VARIANTS
    spread = [r.prompts for r in replicas]
    assert sum(spread) == 6 * VARIANTS
    assert min(spread) >= VARIANTS, f"a replica got no request: {spread}"

    # One pod goes away (scaled in, drained, rescheduled): the rest take every request.
    gone, *left = replicas
    await gone.host.stop(grace=5.0)
    before = [r.prompts for r in left]
    for seed in range(100, 100 + 4 * VARIANTS, VARIANTS):
        assert await generate(gateway, seed) == VARIANTS
    gained = [r.prompts - b for r, b in zip(left, before, strict=True)]
    assert gone.prompts == spread[0]
    assert sum(gained) == 4 * VARIANTS
    assert min(gained) >= VARIANTS, f"the requests did not spread over the rest: {gained}"


async def test_a_draining_replica_finishes_its_variants_while_new_requests_go_elsewhere(
    exit_stack: AsyncExitStack,
) -> None:
    """SIGTERM on a render pod: its running render completes within the grace period."""
    replicas = await start_replicas(exit_stack, 2, step_delay_s=0.02)
    gateway = await gateway_over(exit_stack, replicas)

    call = gateway.stub.Generate(request(seed=7), timeout=30)
    results_before = 0
    async for event in call:  # read until a variant is sampling on one of the replicas
        results_before += event.HasField("result")
        if event.HasField("progress"):
            break
    running = asyncio.create_task(results_of(call))
    draining = next(r for r in replicas if r.comfyui.fake.counters.prompts_started)
    other = next(r for r in replicas if r is not draining)
    stopping = asyncio.create_task(draining.host.stop(grace=20.0))

    assert await generate(gateway, seed=50) == VARIANTS  # taken by the replica that stays
    assert other.prompts == VARIANTS
    assert results_before + await running == VARIANTS  # the drained replica finished its work
    await stopping
    assert draining.comfyui.fake.counters.prompts_succeeded == VARIANTS
