"""Phases shared through a real Redis by several schedulers, as gateway replicas share them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.shared_phases import SharedPhaseScheduler
from tests.gateway.phases.holders import Holder
from tools.stack import free_port


@pytest.fixture
async def replicas(redis_server: str, redis_prefix: str) -> AsyncIterator[Callable[..., Any]]:
    """Makes schedulers sharing this test's keys (one per would-be gateway replica)."""
    made: list[SharedPhaseScheduler] = []

    def make(**options: Any) -> SharedPhaseScheduler:
        scheduler = SharedPhaseScheduler(
            redis_server, prefix=redis_prefix, **({"max_wait_s": 60.0} | options)
        )
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        await scheduler.close()


async def test_calls_of_one_phase_on_two_replicas_run_together_and_the_other_waits(
    replicas: Callable[..., SharedPhaseScheduler],
) -> None:
    one, two = replicas(), replicas()
    vision_one = Holder(one, "vision")
    await vision_one.entered.wait()
    vision_two = Holder(two, "vision")
    await vision_two.entered.wait()
    planner = Holder(one, "planner")
    await asyncio.sleep(0.3)
    assert not planner.entered.is_set(), "the planner phase waits for both replicas' vision"
    await vision_one.finish()
    await asyncio.sleep(0.2)
    assert not planner.entered.is_set()
    await vision_two.finish()
    async with asyncio.timeout(2):
        await planner.entered.wait()
    await planner.finish()
    assert await one.phase_starts() == {"vision": 1, "planner": 1}


async def test_a_burst_phase_stays_open_briefly_for_another_replicas_call(
    replicas: Callable[..., SharedPhaseScheduler],
) -> None:
    one, two = replicas(gather_s=0.5), replicas(gather_s=0.5)
    burst = [Holder(one, "vision"), Holder(two, "vision")]
    await asyncio.gather(*(h.entered.wait() for h in burst))
    for holder in burst:
        await holder.finish()
    planner = Holder(one, "planner")
    late = Holder(two, "vision")
    async with asyncio.timeout(2):
        await late.entered.wait()
    assert not planner.entered.is_set()
    await late.finish()
    async with asyncio.timeout(3):
        await planner.entered.wait()
    await planner.finish()
    assert await one.phase_starts() == {"vision": 1, "planner": 1}


async def test_a_call_waits_at_most_max_wait_then_runs_beside_the_other_phase(
    replicas: Callable[..., SharedPhaseScheduler],
) -> None:
    one, two = replicas(max_wait_s=0.4), replicas(max_wait_s=0.4)
    vision = Holder(one, "vision")
    await vision.entered.wait()
    started = time.monotonic()
    async with asyncio.timeout(3), two.phase("planner") as admission:
        assert admission.bypassed
    assert time.monotonic() - started >= 0.35
    await vision.finish()


async def test_lone_call_on_a_replica_is_admitted_at_once(
    replicas: Callable[..., SharedPhaseScheduler],
) -> None:
    one = replicas(gather_s=30.0, join_window_s=30.0)
    async with asyncio.timeout(2):
        for phase in ("vision", "planner", "vision"):
            async with one.phase(phase) as admission:
                assert not admission.bypassed and admission.waited_s < 0.5


async def test_a_replica_that_stops_renewing_frees_the_phase_after_its_lease(
    replicas: Callable[..., SharedPhaseScheduler],
) -> None:
    doomed, survivor = replicas(lease_s=0.6), replicas(lease_s=0.6)
    holder = Holder(doomed, "vision")
    await holder.entered.wait()
    for task in doomed._tasks:  # the replica dies: nothing renews, nothing releases
        task.cancel()
    started = time.monotonic()
    async with asyncio.timeout(5), survivor.phase("planner") as admission:
        waited = time.monotonic() - started
    assert not admission.bypassed
    assert 0.3 < waited < 3.0, waited
    holder.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holder.task


async def test_entry_hook_runs_once_for_a_burst_across_replicas(
    replicas: Callable[..., SharedPhaseScheduler],
) -> None:
    calls = 0

    async def unload() -> list[str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return ["model still loaded"]

    hooks = {"render": unload}
    one = replicas(exclusive={"render"}, entry_hooks=hooks)
    two = replicas(exclusive={"render"}, entry_hooks=hooks)
    vision = Holder(one, "vision")
    await vision.entered.wait()
    renders = [Holder(one, "render"), Holder(two, "render"), Holder(two, "render")]
    await asyncio.sleep(0.3)
    assert not any(r.entered.is_set() for r in renders), "render is exclusive"
    await vision.finish()
    async with asyncio.timeout(3):
        await asyncio.gather(*(r.entered.wait() for r in renders))
    assert calls == 1
    assert all(r.admission and r.admission.warnings == ["model still loaded"] for r in renders)
    late_vision = Holder(two, "vision")
    await asyncio.sleep(0.3)
    assert not late_vision.entered.is_set(), "no call joins a running exclusive phase"
    for render in renders:
        await render.finish()
    async with asyncio.timeout(3):
        await late_vision.entered.wait()
    await late_vision.finish()


async def test_an_unreachable_redis_admits_calls_at_once(redis_prefix: str) -> None:
    scheduler = SharedPhaseScheduler(f"redis://127.0.0.1:{free_port()}/0", prefix=redis_prefix)
    try:
        async with asyncio.timeout(5), scheduler.phase("vision") as admission:
            assert admission.bypassed
    finally:
        await scheduler.close()
