"""The phase scheduler that groups model calls of concurrent requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.scheduler import PhaseScheduler
from tests.gateway.phases.holders import Holder


async def until(condition: Callable[[], bool]) -> None:
    """Lets other tasks run until ``condition`` holds."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def vision_running_planner_waiting(scheduler: PhaseScheduler) -> tuple[Holder, Holder]:
    """A vision call inside its phase and a planner call waiting for its own."""
    vision = Holder(scheduler, "vision")
    await vision.entered.wait()
    planner = Holder(scheduler, "planner")
    await until(lambda: scheduler.waiting("planner") == 1)
    return vision, planner


async def test_lone_call_is_admitted_at_once() -> None:
    scheduler = PhaseScheduler(max_wait_s=60.0)
    async with scheduler.phase("vision") as admission:
        assert scheduler.current == "vision"
        assert admission.waited_s == 0.0 and not admission.bypassed
    assert scheduler.current is None


async def test_calls_of_the_running_phase_run_together() -> None:
    scheduler = PhaseScheduler(max_wait_s=60.0)
    first, second = Holder(scheduler, "vision"), Holder(scheduler, "vision")
    await first.entered.wait()
    await second.entered.wait()
    assert scheduler.running("vision") == 2
    await first.finish()
    await second.finish()


async def test_other_phase_waits_until_the_running_one_drains() -> None:
    scheduler = PhaseScheduler(max_wait_s=60.0)
    vision, planner = await vision_running_planner_waiting(scheduler)
    assert not planner.entered.is_set()
    await vision.finish()
    await planner.entered.wait()
    assert scheduler.current == "planner"
    await planner.finish()


async def test_all_waiting_calls_of_a_phase_are_admitted_together() -> None:
    scheduler = PhaseScheduler(max_wait_s=60.0)
    vision = Holder(scheduler, "vision")
    await vision.entered.wait()
    planners = [Holder(scheduler, "planner") for _ in range(3)]
    await until(lambda: scheduler.waiting("planner") == 3)
    await vision.finish()
    await asyncio.gather(*(p.entered.wait() for p in planners))
    assert scheduler.running("planner") == 3
    assert scheduler.phase_starts["planner"] == 1
    for planner in planners:
        await planner.finish()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_newcomer_joins_the_running_phase_while_the_other_has_waited_briefly() -> None:
    clock = Clock()
    scheduler = PhaseScheduler(max_wait_s=60.0, join_window_s=2.0, clock=clock)
    vision, planner = await vision_running_planner_waiting(scheduler)
    clock.now += 1.9
    late_vision = Holder(scheduler, "vision")
    await late_vision.entered.wait()
    assert scheduler.running("vision") == 2 and not planner.entered.is_set()
    await vision.finish()
    await late_vision.finish()
    await planner.entered.wait()
    assert scheduler.phase_starts == {"vision": 1, "planner": 1}
    await planner.finish()


async def test_newcomer_queues_behind_a_phase_that_waited_past_the_join_window() -> None:
    clock = Clock()
    scheduler = PhaseScheduler(max_wait_s=60.0, join_window_s=2.0, clock=clock)
    vision, planner = await vision_running_planner_waiting(scheduler)
    clock.now += 2.0
    late_vision = Holder(scheduler, "vision")
    await until(lambda: scheduler.waiting("vision") == 1)
    await vision.finish()
    await planner.entered.wait()
    assert not late_vision.entered.is_set()
    await planner.finish()
    await late_vision.entered.wait()
    await late_vision.finish()


async def test_drained_phase_stays_open_briefly_for_its_own_calls() -> None:
    scheduler = PhaseScheduler(max_wait_s=60.0, gather_s=0.2)
    vision, planner = await vision_running_planner_waiting(scheduler)
    await vision.finish()
    on_its_way = Holder(scheduler, "vision")
    await on_its_way.entered.wait()
    assert not planner.entered.is_set()
    await on_its_way.finish()
    drained = time.monotonic()
    await planner.entered.wait()
    assert time.monotonic() - drained < 1.0, "the gathering is bounded"
    assert scheduler.phase_starts == {"vision": 1, "planner": 1}
    await planner.finish()


async def test_a_burst_phase_stays_open_briefly_after_it_drains() -> None:
    scheduler = PhaseScheduler(max_wait_s=60.0, gather_s=0.2)
    burst = [Holder(scheduler, "vision") for _ in range(2)]
    await asyncio.gather(*(h.entered.wait() for h in burst))
    for holder in burst:
        await holder.finish()
    planner = Holder(scheduler, "planner")
    await until(lambda: scheduler.waiting("planner") == 1)
    late = Holder(scheduler, "vision")
    await late.entered.wait()
    assert not planner.entered.is_set()
    await late.finish()
    async with asyncio.timeout(1):
        await planner.entered.wait()
    assert scheduler.phase_starts == {"vision": 1, "planner": 1}
    await planner.finish()


async def test_lone_request_is_not_held_back_between_its_calls() -> None:
    scheduler = PhaseScheduler(max_wait_s=60.0, gather_s=30.0, join_window_s=30.0)
    async with asyncio.timeout(1):
        for phase in ("vision", "planner", "vision"):
            async with scheduler.phase(phase) as admission:
                assert admission.waited_s == 0.0 and scheduler.current == phase


async def test_call_runs_beside_the_other_phase_after_the_longest_wait() -> None:
    scheduler = PhaseScheduler(max_wait_s=0.0)
    vision = Holder(scheduler, "vision")
    await vision.entered.wait()
    planner = Holder(scheduler, "planner")
    await planner.entered.wait()
    assert planner.admission is not None and planner.admission.bypassed
    await planner.finish()
    await vision.finish()


async def test_exclusive_phase_never_runs_beside_another() -> None:
    scheduler = PhaseScheduler(max_wait_s=0.0, exclusive={"render"})
    vision = Holder(scheduler, "vision")
    await vision.entered.wait()
    render = Holder(scheduler, "render")
    await until(lambda: scheduler.waiting("render") == 1)
    await asyncio.sleep(0.01)  # longer than max_wait_s: the render must still wait
    assert not render.entered.is_set()
    await vision.finish()
    await render.entered.wait()
    await render.finish()


async def test_no_call_jumps_into_a_running_exclusive_phase() -> None:
    scheduler = PhaseScheduler(max_wait_s=0.0, exclusive={"render"})
    render = Holder(scheduler, "render")
    await render.entered.wait()
    vision = Holder(scheduler, "vision")
    await until(lambda: scheduler.waiting("vision") == 1)
    await asyncio.sleep(0.01)
    assert not vision.entered.is_set()
    await render.finish()
    await vision.entered.wait()
    await vision.finish()


async def test_entry_hook_runs_once_for_a_burst() -> None:
    calls = 0

    async def unload() -> list[str]:
        nonlocal calls
        calls += 1
        return []

    scheduler = PhaseScheduler(
        max_wait_s=60.0, exclusive={"render"}, entry_hooks={"render": unload}
    )
    vision = Holder(scheduler, "vision")
    await vision.entered.wait()
    renders = [Holder(scheduler, "render") for _ in range(3)]
    await until(lambda: scheduler.waiting("render") == 3)
    await vision.finish()
    await asyncio.gather(*(r.entered.wait() for r in renders))
    assert calls == 1
    for render in renders:
        await render.finish()


async def test_entry_hook_runs_before_a_lone_call_of_its_phase() -> None:
    calls = 0

    async def unload() -> list[str]:
        nonlocal calls
        calls += 1
        return []

    scheduler = PhaseScheduler(entry_hooks={"render": unload})
    async with scheduler.phase("render"):
        assert calls == 1


async def test_failed_entry_hook_admits_the_calls_with_a_warning() -> None:
    async def broken() -> list[str]:
        raise RuntimeError("ollama gone")

    scheduler = PhaseScheduler(entry_hooks={"render": broken})
    async with scheduler.phase("render") as admission:
        assert "ollama gone" in admission.warnings[0]


async def test_disabled_scheduler_admits_everything_at_once() -> None:
    scheduler = PhaseScheduler(enabled=False)
    vision = Holder(scheduler, "vision")
    planner = Holder(scheduler, "planner")
    await vision.entered.wait()
    await planner.entered.wait()
    await vision.finish()
    await planner.finish()


async def test_disabled_scheduler_runs_the_hook_per_call() -> None:
    calls = 0

    async def unload() -> list[str]:
        nonlocal calls
        calls += 1
        return []

    scheduler = PhaseScheduler(enabled=False, entry_hooks={"render": unload})
    for _ in range(2):
        async with scheduler.phase("render"):
            pass
    assert calls == 2


async def test_cancelled_waiter_leaves_the_queue() -> None:
    scheduler = PhaseScheduler(max_wait_s=60.0)
    vision, planner = await vision_running_planner_waiting(scheduler)
    planner.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await planner.task
    assert scheduler.waiting() == 0
    await vision.finish()
    assert scheduler.current is None


async def test_wait_longer_than_the_timeout_raises() -> None:
    scheduler = PhaseScheduler(max_wait_s=60.0)
    vision = Holder(scheduler, "vision")
    await vision.entered.wait()
    with pytest.raises(TimeoutError):
        async with scheduler.phase("planner", timeout_s=0.01):
            pass
    assert scheduler.waiting() == 0
    await vision.finish()


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.sampled_from(["vision", "planner", "render"]), st.integers(0, 3)),
        min_size=1,
        max_size=12,
    ),
    max_wait_s=st.sampled_from([0.0, 60.0]),
)
def test_phases_never_mix_unless_bypassing_and_every_call_finishes(
    calls: list[tuple[str, int]], max_wait_s: float
) -> None:
    async def scenario() -> None:
        scheduler = PhaseScheduler(max_wait_s=max_wait_s, gather_s=0.001, exclusive={"render"})
        inside: list[tuple[str, bool]] = []

        async def call(phase: str, hold: int) -> None:
            async with scheduler.phase(phase) as admission:
                entry = (phase, admission.bypassed)
                inside.append(entry)
                grouped = {p for p, bypassed in inside if not bypassed}
                assert len(grouped) <= 1, inside
                if "render" in {p for p, _ in inside}:
                    assert len(inside) == sum(p == "render" for p, _ in inside), inside
                for _ in range(hold):
                    await asyncio.sleep(0)
                inside.remove(entry)

        async with asyncio.timeout(10):
            await asyncio.gather(*(call(phase, hold) for phase, hold in calls))
        await asyncio.sleep(0.02)  # a burst's phase stays open gather_s after it drains
        assert scheduler.current is None and scheduler.waiting() == 0

    asyncio.run(scenario())
