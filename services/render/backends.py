"""Several ComfyUI backends behind one render service: who gets the next variant.

ComfyUI runs one prompt at a time per server, so throughput grows with servers only if
each variant goes where the queue is shortest. The load of a backend is the larger of
what it reports (``queue_remaining``, which counts every client's prompts) and what this
instance has reserved there but may not have queued yet (an upload can take a moment,
and concurrent requests must not all pick the same idle server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.common.logs import get_logger
from services.render.catalog import NodeCatalog
from services.render.comfyui_client import ComfyUIClient, ComfyUIError

__all__ = ["BackendLoad", "BackendPool", "assign_least_loaded"]

_log = get_logger(__name__)


@dataclass(frozen=True)
class BackendLoad:
    """A reachable backend and its current load (prompts running or waiting)."""

    client: ComfyUIClient
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
    """The ComfyUI backends of this service and the prompts it has placed on them.

    Args:
        clients: One client per backend, in configuration order.
    """

    def __init__(self, clients: Sequence[ComfyUIClient]) -> None:
        if not clients:
            raise ValueError("at least one ComfyUI backend is needed")
        self.clients = tuple(clients)
        self._reserved: dict[str, int] = {c.url: 0 for c in clients}

    def start(self) -> None:
        """Opens every backend's websocket."""
        for client in self.clients:
            client.start()

    async def aclose(self) -> None:
        """Closes every backend's websocket and HTTP pool."""
        await asyncio.gather(*(client.aclose() for client in self.clients))

    async def loads(self) -> tuple[list[BackendLoad], dict[str, ComfyUIError]]:
        """Asks every backend for its queue length, all at once.

        Returns:
            The reachable backends with their loads (reservations included), and the
            error of each unreachable one by URL.
        """
        answers = await asyncio.gather(
            *(client.queue_load() for client in self.clients), return_exceptions=True
        )
        reachable: list[BackendLoad] = []
        failed: dict[str, ComfyUIError] = {}
        for client, answer in zip(self.clients, answers, strict=True):
            if isinstance(answer, ComfyUIError):
                failed[client.url] = answer
            elif isinstance(answer, BaseException):
                raise answer
            else:
                reachable.append(BackendLoad(client, max(answer, self._reserved[client.url])))
        return reachable, failed

    def reserve(self, clients: Iterable[ComfyUIClient]) -> None:
        """Counts prompts about to be placed on these backends (one per item)."""
        for client in clients:
            self._reserved[client.url] += 1

    def release(self, client: ComfyUIClient) -> None:
        """Forgets one prompt placed on ``client`` (it finished, failed or was cancelled)."""
        self._reserved[client.url] = max(0, self._reserved[client.url] - 1)

    @property
    def reserved(self) -> Mapping[str, int]:
        """Prompts of this instance per backend URL, not yet finished."""
        return dict(self._reserved)

    async def any_ready(self, required_models: Iterable[tuple[str, str, str]]) -> bool:
        """Whether at least one backend can render the default workflows.

        A backend is ready when it answers ``/system_stats`` and lists every required
        model file (e.g. the Flux checkpoint) in its node schemas.

        Args:
            required_models: ``(class_type, input, file name)`` triples.
        """
        required = list(required_models)

        async def ready(client: ComfyUIClient) -> bool:
            try:
                await client.system_stats()
                for class_type, input_name, file_name in required:
                    info = await client.node_info(class_type)
                    options = NodeCatalog({class_type: info}).options(class_type, input_name)
                    if options is None or file_name not in options:
                        _log.warning(
                            "comfyui backend lacks a model",
                            extra={"backend": client.url, "node": class_type, "file": file_name},
                        )
                        return False
            except ComfyUIError:
                return False
            return True

        results = await asyncio.gather(*(ready(client) for client in self.clients))
        return any(results)
