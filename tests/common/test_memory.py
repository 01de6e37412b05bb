"""The memory budget of decoded images."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.common.errors import ResourceExhaustedError
from services.common.memory import MemoryBudget


async def test_a_reservation_beyond_the_budget_is_refused_with_a_retry_delay() -> None:
    budget = MemoryBudget(100, wait_s=0.05, name="test budget")
    async with budget.reserve(60):
        with pytest.raises(ResourceExhaustedError, match="test budget") as refused:
            async with budget.reserve(60):
                pass
    assert refused.value.retry_after_s is not None and refused.value.retry_after_s > 0
    assert budget.used_bytes == 0


async def test_a_reservation_larger_than_the_budget_runs_alone() -> None:
    budget = MemoryBudget(100, wait_s=0.0, name="test budget")
    async with budget.reserve(500):
        assert budget.used_bytes == 500


async def test_a_cancelled_caller_keeps_its_reservation_until_its_thread_ends() -> None:
    budget = MemoryBudget(100, wait_s=0.0, name="test budget")
    release = threading.Event()
    task = asyncio.create_task(budget.run_in_thread(100, release.wait))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.sleep(0.05)
    # The decode thread still holds its memory: nothing else may start.
    assert budget.used_bytes == 100
    with pytest.raises(ResourceExhaustedError):
        async with budget.reserve(10):
            pass
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.used_bytes == 0
