"""Remembering analyses: a byte-bounded LRU, and single-flight for concurrent misses.

An analysis costs seconds of GPU time and is a pure function of the image bytes, the
model and the prompts, so it is cached under a key of all three. Concurrent requests for
the same key share one computation instead of each asking the model.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from services.common.metrics import CACHE_EVENTS_TOTAL

__all__ = ["ByteBoundedLRU", "SingleFlight"]

K = TypeVar("K")
V = TypeVar("V")


class ByteBoundedLRU(Generic[K, V]):
    """A least-recently-used map whose entries together stay within a byte budget.

    Hits, misses and evictions are counted in ``imagegen_cache_events_total{cache=name}``.

    Args:
        max_bytes: Budget for all entries; 0 keeps nothing.
        size_of: Bytes one value holds (its own estimate).
        name: The ``cache`` label of the metric.
    """

    def __init__(self, max_bytes: int, size_of: Callable[[V], int], *, name: str) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._hits = CACHE_EVENTS_TOTAL.labels(cache=name, result="hit")
        self._misses = CACHE_EVENTS_TOTAL.labels(cache=name, result="miss")
        self._evictions = CACHE_EVENTS_TOTAL.labels(cache=name, result="evict")

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        """Bytes held by the entries now."""
        return self._bytes

    def get(self, key: K) -> V | None:
        """The value under ``key`` (now the most recently used), or None; counted."""
        entry = self._entries.get(key)
        if entry is None:
            self._misses.inc()
            return None
        self._entries.move_to_end(key)
        self._hits.inc()
        return entry[0]

    def put(self, key: K, value: V) -> None:
        """Store ``value``, evicting the least recently used entries to stay in budget.

        A value larger than the whole budget is not stored.
        """
        size = self._size_of(value)
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        if size > self.max_bytes:
            return
        self._entries[key] = (value, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted
            self._evictions.inc()


class SingleFlight(Generic[K, V]):
    """Runs one computation per key at a time; concurrent callers share its result.

    The computation runs in its own task, so a caller that gives up (cancelled, deadline)
    does not cancel it for the others still waiting.

    Args:
        name: The ``cache`` label of the ``coalesced`` events in the cache metric.
    """

    def __init__(self, *, name: str) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}
        self._coalesced = CACHE_EVENTS_TOTAL.labels(cache=name, result="coalesced")

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        """The result of ``compute()``, started now or shared with a flight in progress.

        Args:
            key: What is being computed.
            compute: Starts the computation; called only when no flight for ``key`` runs.

        Returns:
            The flight's result.

        Raises:
            Exception: The flight's error, raised in every caller that shared it.
        """
        task = self._flights.get(key)
        if task is None:

            async def flight() -> V:
                return await compute()

            task = asyncio.create_task(flight(), name=f"single-flight-{key}")
            self._flights[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        else:
            self._coalesced.inc()
        return await asyncio.shield(task)

    def _forget(self, key: K, task: asyncio.Task[V]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        # Mark an error as retrieved even when every waiter left before it arrived.
        if not task.cancelled():
            task.exception()
