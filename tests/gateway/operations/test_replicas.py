"""Gateway replicas sharing one Redis: any replica serves any job; a dead replica's job is
taken over and finished by another, with the same seed."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from imagegen.gateway.v1 import gateway_pb2
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.operations.clients import (
    connect,
    metadata_of,
    response_of,
    txt2img,
    until,
)
from tests.gateway.processes import gateway_process
from tests.gateway.system import System, start_gateway_in, start_system
from tools.stack import free_port


def _redis_settings(url: str, prefix: str, **more: Any) -> dict[str, Any]:
    return {"jobs_store": "redis", "jobs_redis_url": url, "jobs_redis_prefix": prefix} | more


async def _two_gateways(
    stack: AsyncExitStack, url: str, prefix: str, *, step_delay_s: float
) -> tuple[System, str]:
    settings = _redis_settings(url, prefix)
    system = await start_system(
        stack, comfyui=FakeComfyUISettings(step_delay_s=step_delay_s), **settings
    )
    other = await start_gateway_in(stack, system, **settings)
    return system, other.address


async def test_a_job_submitted_to_one_replica_is_watched_and_cancelled_through_another(
    exit_stack: AsyncExitStack, redis_server: str, redis_prefix: str
) -> None:
    system, other_address = await _two_gateways(
        exit_stack, redis_server, redis_prefix, step_delay_s=0.05
    )
    one = await connect(exit_stack, system.gateway.address)
    other = await connect(exit_stack, other_address)
    operation = await one.submit(txt2img(variants=2))

    seen: list[gateway_pb2.GenerateResponse] = []
    call = other.gateway.WatchOperation(
        gateway_pb2.WatchOperationRequest(name=operation.name), timeout=30
    )
    async for event in call:
        seen.append(event)
        if event.HasField("progress"):
            break
    call.cancel()
    assert seen[0].HasField("accepted")
    assert any(event.HasField("plan") for event in seen)

    await other.cancel(operation.name)
    done = await other.wait_done(operation.name)
    assert done.error.code == grpc.StatusCode.CANCELLED.value[0]
    assert (await one.get(operation.name)).done
    fake = system.comfyui.fake
    await fake.wait_until_idle(timeout_s=10)
    assert fake.queued_ids == [] and fake.running_ids == []


async def test_finished_jobs_replay_through_either_replica(
    exit_stack: AsyncExitStack, redis_server: str, redis_prefix: str
) -> None:
    system, other_address = await _two_gateways(
        exit_stack, redis_server, redis_prefix, step_delay_s=0.0
    )
    one = await connect(exit_stack, system.gateway.address)
    other = await connect(exit_stack, other_address)
    names = [(await one.submit(txt2img(variants=1, seed=i))).name for i in range(4)]
    for name in names:
        await other.wait_done(name)
    for name in names:
        assert await one.watch(name) == await other.watch(name)
    assert system.comfyui.fake.counters.prompts_submitted == 4, "each job ran exactly once"


async def test_a_killed_replicas_job_is_taken_over_and_finished_with_the_same_seed(
    exit_stack: AsyncExitStack, redis_server: str, redis_prefix: str, tmp_path: Path
) -> None:
    system = await start_system(exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.04))
    env = {
        "GATEWAY_JOBS_STORE": "redis",
        "GATEWAY_JOBS_REDIS_URL": redis_server,
        "GATEWAY_JOBS_REDIS_PREFIX": redis_prefix,
        "GATEWAY_JOBS_LEASE_S": "1",
    }
    with gateway_process(system, env, tmp_path / "gateway.log") as (address, process):
        doomed = await connect(exit_stack, address)
        operation = await until(
            lambda: _submit_when_up(doomed), lambda op: op is not None, timeout_s=30
        )
        running = await until(
            lambda: doomed.get(operation.name),
            lambda op: any(v.step > 0 for v in metadata_of(op).variants),
        )
        seed = metadata_of(running).seed
        process.send_signal(signal.SIGKILL)  # no graceful stop: the job is left running

    survivor = await start_gateway_in(
        exit_stack,
        system,
        **_redis_settings(redis_server, redis_prefix, jobs_lease_s=1.0),
    )
    client = await connect(exit_stack, survivor.address)
    done = await client.wait_done(operation.name, timeout_s=40)
    metadata = metadata_of(done)
    assert metadata.state == gateway_pb2.JOB_STATE_SUCCEEDED, done.error
    assert metadata.attempts == 2
    assert "JOB_RESTARTED" in [w.code for w in metadata.warnings]
    results = response_of(done).results
    assert [r.seed for r in results] == [seed, seed + 1]
    fake = system.comfyui.fake
    await fake.wait_until_idle(timeout_s=10)
    assert fake.queued_ids == [] and fake.running_ids == []


async def _submit_when_up(client: Any) -> Any:
    try:
        return await client.submit(txt2img(variants=2))
    except grpc.aio.AioRpcError as e:
        if e.code() is grpc.StatusCode.UNAVAILABLE:
            await asyncio.sleep(0.2)
            return None
        raise


async def test_an_unreachable_redis_is_unavailable_naming_the_job_store(
    exit_stack: AsyncExitStack, redis_prefix: str
) -> None:
    system = await start_system(
        exit_stack,
        **_redis_settings(f"redis://127.0.0.1:{free_port()}/0", redis_prefix, jobs_workers=0),
    )
    client = await connect(exit_stack, system.gateway.address)
    for call in (client.submit(txt2img()), client.get("operations/" + "a" * 32)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "job store (redis) is unavailable" in refused.value.details()
