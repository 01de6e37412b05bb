"""The byte-bounded LRU and single-flight."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from services.vision.cache import ByteBoundedLRU, SingleFlight


def _events(cache: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "imagegen_cache_events_total", {"cache": cache, "result": result}
    )
    return value or 0.0


def test_lru_evicts_the_least_recently_used_to_stay_within_its_bytes() -> None:
    lru: ByteBoundedLRU[str, str] = ByteBoundedLRU(10, len, name="test_evict")
    lru.put("a", "aaaa")
    lru.put("b", "bbbb")
    assert lru.get("a") == "aaaa"  # a is now the most recently used
    lru.put("c", "cccc")
    assert lru.get("b") is None
    assert lru.get("a") == "aaaa" and lru.get("c") == "cccc"
    assert lru.bytes_used == 8


def test_lru_does_not_store_a_value_larger_than_its_budget() -> None:
    lru: ByteBoundedLRU[str, str] = ByteBoundedLRU(3, len, name="test_big")
    lru.put("a", "aaaa")
    assert len(lru) == 0 and lru.bytes_used == 0


def test_lru_counts_hits_and_misses() -> None:
    lru: ByteBoundedLRU[str, str] = ByteBoundedLRU(100, len, name="test_counts")
    lru.get("a")
    lru.put("a", "x")
    lru.get("a")
    lru.get("a")
    assert _events("test_counts", "miss") == 1
    assert _events("test_counts", "hit") == 2


async def test_single_flight_runs_one_computation_for_concurrent_callers() -> None:
    flights: SingleFlight[str, int] = SingleFlight(name="test_flight")
    release = asyncio.Event()
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 7

    waiters = [asyncio.create_task(flights.run("k", compute)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == [7] * 20
    assert calls == 1
    assert len(flights) == 0


async def test_single_flight_survives_a_caller_that_gives_up() -> None:
    flights: SingleFlight[str, int] = SingleFlight(name="test_cancel")
    release = asyncio.Event()

    async def compute() -> int:
        await release.wait()
        return 1

    quitter = asyncio.create_task(flights.run("k", compute))
    stayer = asyncio.create_task(flights.run("k", compute))
    await asyncio.sleep(0)
    quitter.cancel()
    release.set()
    assert await stayer == 1
    with pytest.raises(asyncio.CancelledError):
        await quitter


async def test_single_flight_shares_an_error_and_then_forgets_it() -> None:
    flights: SingleFlight[str, int] = SingleFlight(name="test_error")
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise ValueError("boom")

    results = await asyncio.gather(
        flights.run("k", failing), flights.run("k", failing), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    with pytest.raises(ValueError):
        await flights.run("k", failing)
    assert calls == 2
