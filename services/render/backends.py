"""Several render backends behind one render service: who gets the next variant.

A ComfyUI server runs one prompt at a time per server, so throughput grows with servers only if
each variant goes where the queue is shortest. The load of a backend is the larger of
what it reports (``queue_remaining``, which counts every client's prompts) and what this
instance has reserved there but may not have queued yet (an upload can take a moment,
and concurrent requests must not all pick the same idle server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.render.backend import BackendError, RenderBackend

__all__ = ["BackendLoad", "BackendPool", "assign_least_loaded"]


@dataclass(frozen=True)
class BackendLoad:
    """A reachable backend and its current load (prompts running or waiting)."""

    backend: RenderBackend
    load: int


def assign_least_loaded(loads: Sequence[int], count: int) -> list[int]:
    """Which backend gets each of ``count`` new prompts.

    Greedy: each prompt goes to the backend with the fewest prompts, counting the ones
    just assigned; ties go to the earlier backend.

    Args:
        loads: Current load of each backend.
        count: Prompts to place.

    Returns:
        For each prompt, the index of its backend.
    """
    if not loads:
        raise ValueError("no backend to assign to")
    current = list(loads)
    chosen = []
    for _ in range(count):
        best = min(range(len(current)), key=lambda i: (current[i], i))
        chosen.append(best)
        current[best] += 1
    return chosen


class BackendPool:
    """The render backends of this service and the prompts it has placed on them.

    Args:
        backends: The backends, in configuration order.
    """

    def __init__(self, backends: Sequence[RenderBackend]) -> None:
        if not backends:
            raise ValueError("at least one render backend is needed")
        self.backends = tuple(backends)
        self._reserved: dict[str, int] = {b.name: 0 for b in backends}

    def start(self) -> None:
        """Opens every backend's long-lived connections."""
        for backend in self.backends:
            backend.start()

    async def aclose(self) -> None:
        """Closes every backend."""
        await asyncio.gather(*(backend.aclose() for backend in self.backends))

    async def loads(self) -> tuple[list[BackendLoad], dict[str, BackendError]]:
        """Asks every backend for its queue length, all at once.

        Returns:
            The reachable backends with their loads (reservations included), and the
            error of each unreachable one by name.
        """
        answers = await asyncio.gather(
            *(backend.queue_length() for backend in self.backends), return_exceptions=True
        )
        reachable: list[BackendLoad] = []
        failed: dict[str, BackendError] = {}
        for backend, answer in zip(self.backends, answers, strict=True):
            if isinstance(answer, BackendError):
                failed[backend.name] = answer
            elif isinstance(answer, BaseException):
                raise answer
            else:
                reachable.append(BackendLoad(backend, max(answer, self._reserved[backend.name])))
        return reachable, failed

    def reserve(self, backends: Iterable[RenderBackend]) -> None:
        """Counts prompts about to be placed on these backends (one per item)."""
        for backend in backends:
            self._reserved[backend.name] += 1

    def release(self, backend: RenderBackend) -> None:
        """Forgets one prompt placed on ``backend`` (it finished, failed or was cancelled)."""
        self._reserved[backend.name] = max(0, self._reserved[backend.name] - 1)

    @property
    def reserved(self) -> Mapping[str, int]:
        """Prompts of this instance per backend name, not yet finished."""
        return dict(self._reserved)

    async def any_ready(self, required_models: Iterable[tuple[str, str, str]]) -> bool:
        """Whether at least one backend can render the default workflows.

        A backend is ready when it answers and lists every required model file (e.g.
        the Flux checkpoint).

        Args:
            required_models: ``(class_type, input, file name)`` triples.
        """
        required = list(required_models)
        results = await asyncio.gather(*(b.has_models(required) for b in self.backends))
        return any(results)
