"""Sharing one GPU: model grouping across requests and single-GPU mode."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from standins.ollama.faults import FaultKind
from tests.gateway.conftest import StartGateway
from tests.gateway.images import jpeg_bytes
from tests.gateway.system import RunningGateway, System, start_system


def _request(index: int) -> gateway_pb2.GenerateRequest:
    return gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=jpeg_bytes(96, 64, color=(20 * index, 90, 160))),
        instruction=f"Перекрась чашку в тёмно-зелёный цвет ({index})",
        seed=index,
    )


async def _generate(gateway: RunningGateway, index: int) -> list[gateway_pb2.GenerateResponse]:
    return [e async for e in gateway.stub.Generate(_request(index), timeout=60)]


def _unloads(system: System) -> list[str]:
    return [
        str(r.model)
        for r in system.ollama.fake.requests_to("/api/chat")
        if isinstance(r.body, dict) and r.body.get("keep_alive") == 0 and not r.body.get("messages")
    ]


async def test_concurrent_requests_all_complete_with_grouping(system: System) -> None:
    outcomes = await asyncio.gather(*(_generate(system.gateway, i) for i in range(8)))
    assert all(events[-1].HasField("completed") for events in outcomes)


async def test_concurrent_requests_all_complete_without_grouping(
    system: System, start_gateway: StartGateway
) -> None:
    gateway = await start_gateway(model_grouping=False)
    outcomes = await asyncio.gather(*(_generate(gateway, i) for i in range(4)))
    assert all(events[-1].HasField("completed") for events in outcomes)


async def test_single_gpu_mode_unloads_the_language_models_before_rendering(
    system: System, start_gateway: StartGateway
) -> None:
    gateway = await start_gateway(single_gpu=True)
    events = await _generate(gateway, 1)
    assert events[-1].HasField("completed")
    assert _unloads(system)
    assert system.ollama.fake.resident_models() == []


async def test_default_mode_leaves_the_language_models_loaded(system: System) -> None:
    await _generate(system.gateway, 1)
    assert _unloads(system) == []
    assert system.ollama.fake.resident_models() != []


async def test_single_gpu_burst_hands_the_gpu_over_once(exit_stack: AsyncExitStack) -> None:
    system = await start_system(exit_stack, single_gpu=True)
    # Slow answers keep the first analysis running until every request has arrived.
    system.ollama.fake.faults.add(kind=FaultKind.DELAY, model="llava", delay_s=0.3, times=1)
    outcomes = await asyncio.gather(*(_generate(system.gateway, i) for i in range(3)))
    assert all(events[-1].HasField("completed") for events in outcomes)
    assert len(_unloads(system)) == 1
