"""Two gateway processes in front of one Ollama holding one model: the phases they share
through Redis keep a burst of requests at one load per model, and a gateway killed
while holding a phase holds it no longer than its lease."""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import grpc.aio

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from standins.ollama.faults import FaultKind
from standins.ollama.settings import FakeOllamaSettings
from tests.gateway.images import jpeg_bytes
from tests.gateway.operations.clients import until
from tests.gateway.processes import gateway_process, until_serving
from tests.gateway.system import System, start_system


def _request(index: int, **fields: Any) -> gateway_pb2.GenerateRequest:
    return gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=jpeg_bytes(96, 64, color=(20 * index, 90, 160))),
        instruction=f"Перекрась чашку в тёмно-зелёный цвет ({index})",
        seed=index,
        **fields,
    )


async def _replicas(
    stack: AsyncExitStack, processes: ExitStack, system: System, env: dict[str, str], tmp: Path
) -> list[tuple[Any, Any]]:
    """Two gateway processes sharing phases; their stubs and processes."""
    started = []
    for name in ("one", "two"):
        values = env | {"GATEWAY_JOBS_DIR": str(tmp / name)}
        started.append(processes.enter_context(gateway_process(system, values, tmp / name)))
    await asyncio.gather(*(until_serving(address) for address, _ in started))
    replicas = []
    for address, process in started:
        channel = grpc.aio.insecure_channel(address)
        stack.push_async_callback(channel.close)
        replicas.append((gateway_pb2_grpc.GatewayServiceStub(channel), process))  # type: ignore[no-untyped-call]
    return replicas


def _shared_phases(redis_server: str, redis_prefix: str, **more: str) -> dict[str, str]:
    return {
        "GATEWAY_GROUPING_STORE": "redis",
        "GATEWAY_GROUPING_REDIS_URL": redis_server,
        "GATEWAY_GROUPING_REDIS_PREFIX": redis_prefix,
        "GATEWAY_PLAN_REUSE_WINDOW_S": "0",
    } | more


async def _generate(stub: Any, request: gateway_pb2.GenerateRequest, delay_s: float) -> bool:
    await asyncio.sleep(delay_s)
    events = [event async for event in stub.Generate(request, timeout=30)]
    return bool(events[-1].HasField("completed"))


async def test_eight_requests_over_two_gateway_processes_load_each_model_once(
    exit_stack: AsyncExitStack, redis_server: str, redis_prefix: str, tmp_path: Path
) -> None:
    ollama = FakeOllamaSettings(max_loaded_models=1, num_parallel=1, load_delay_s=0.2)
    system = await start_system(exit_stack, ollama=ollama)
    with ExitStack() as processes:
        replicas = await _replicas(
            exit_stack, processes, system, _shared_phases(redis_server, redis_prefix), tmp_path
        )
        for index, (stub, _) in enumerate(replicas):  # warm: each has its catalog
            assert await _generate(stub, _request(100 + index), 0.0)
        fake = system.ollama.fake
        fake.residency.reset()  # nothing resident: the burst pays for every model it needs
        before = fake.load_count
        # Arrivals 0.1 s apart, alternating between the gateways: gateways that group only
        # their own calls interleave the models (4-6 loads).
        done = await asyncio.gather(
            *(_generate(replicas[i % 2][0], _request(i), 0.1 * i) for i in range(8))
        )
    assert all(done)
    assert fake.load_count - before <= 2, fake.loads_by_model


async def test_a_gateway_killed_inside_a_phase_holds_it_no_longer_than_its_lease(
    exit_stack: AsyncExitStack, redis_server: str, redis_prefix: str, tmp_path: Path
) -> None:
    # Two resident models: only the shared phase, not the model server, can hold the
    # survivor's planner call back.
    system = await start_system(exit_stack, ollama=FakeOllamaSettings(max_loaded_models=2))
    env = _shared_phases(
        redis_server,
        redis_prefix,
        GATEWAY_GROUPING_LEASE_S="1",
        GATEWAY_GROUPING_MAX_WAIT_S="60",  # no running beside the phase: only the lease frees it
    )
    with ExitStack() as processes:
        (doomed, doomed_process), (survivor, _) = await _replicas(
            exit_stack, processes, system, env, tmp_path
        )
        system.ollama.fake.faults.add(kind=FaultKind.DELAY, model="llava", delay_s=10, times=1)
        analysis = asyncio.create_task(_generate(doomed, _request(1), 0.0))

        async def llava_asked() -> int:
            return system.ollama_chats("llava")

        await until(llava_asked, bool, timeout_s=20)  # the doomed gateway is inside the phase
        doomed_process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        described = _request(2, description="A white porcelain cup on a wooden table.")
        assert await _generate(survivor, described, 0.0)
        waited = time.monotonic() - killed
        analysis.cancel()
    assert 0.5 < waited < 6.0, f"the planner call waited {waited:.1f} s after the kill"
