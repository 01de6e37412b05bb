"""ComfyUI as a render backend: the transport and the tracker behind the backend protocol."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from typing import Any

from services.common.logs import get_logger
from services.render.backend import (
    FollowPacing,
    GraphProblem,
    PromptEvent,
    PromptFinished,
    PromptRefusedError,
    StoredResult,
    VariantSpec,
)
from services.render.comfyui.catalog import NodeCatalog, check_graph
from services.render.comfyui.client import ComfyUIClient
from services.render.comfyui.errors import (
    ComfyUIError,
    ComfyUIRefusedError,
    ComfyUIUnavailableError,
)
from services.render.comfyui.graph import build_variant, naming_fields
from services.render.comfyui.messages import PreviewFrame, QueueSnapshot, SocketState
from services.render.comfyui.tracker import PromptTracker, ReadHistory, ReadQueue, TrackerStep
from services.render.workflows import MODEL_FILE_INPUTS

__all__ = ["ComfyUIBackend"]

_log = get_logger(__name__)

_SOCKET_WAIT_S = 2.0
"""Longest wait for the websocket before queueing: ComfyUI does not replay messages."""


class ComfyUIBackend:
    """One ComfyUI server as a :class:`~services.render.backend.RenderBackend`.

    Args:
        client: Its transport (pooled HTTP and the shared websocket).
    """

    def __init__(self, client: ComfyUIClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"ComfyUIBackend({self.client.url!r})"

    @property
    def name(self) -> str:
        """The server's URL."""
        return self.client.url

    def start(self) -> None:
        """Opens the websocket (it reconnects by itself until :meth:`aclose`)."""
        self.client.start()

    async def aclose(self) -> None:
        """Closes the websocket and the HTTP pool."""
        await self.client.aclose()

    async def queue_length(self) -> int:
        """``queue_remaining`` of ``GET /prompt``."""
        return await self.client.queue_load()

    async def has_models(self, required: Iterable[tuple[str, str, str]]) -> bool:
        """Answers ``/system_stats`` and lists each model file in its node schemas."""
        try:
            await self.client.system_stats()
            for class_type, input_name, file_name in required:
                info = await self.client.node_info(class_type)
                options = NodeCatalog({class_type: info}).options(class_type, input_name)
                if options is None or file_name not in options:
                    _log.warning(
                        "comfyui backend lacks a model",
                        extra={"backend": self.name, "node": class_type, "file": file_name},
                    )
                    return False
        except ComfyUIError:
            return False
        return True

    async def problems(self, spec: VariantSpec) -> list[GraphProblem]:
        """Checks the variant's graph against ``/object_info``, re-read when something is
        missing (model files and custom nodes appear without a restart)."""
        catalog = NodeCatalog(await self.client.object_info())
        built = build_variant(spec, catalog)
        skip = built.image_inputs
        problems = check_graph(built.graph, catalog, skip=skip)
        if any(p.is_missing_model or p.kind == "unknown_node" for p in problems):
            catalog = NodeCatalog(await self.client.object_info(refresh=True))
            built = build_variant(spec, catalog)
            problems = check_graph(built.graph, catalog, skip=skip)
        return naming_fields(problems, built.origins)

    async def upload(
        self, data: bytes, filename: str, *, folder: str, deadline: float | None
    ) -> str:
        """``POST /upload/image`` into ``input/<folder>``."""
        return await self.client.upload_image(data, filename, subfolder=folder, deadline=deadline)

    async def follow(
        self,
        spec: VariantSpec,
        prompt_id: str,
        *,
        labels: Mapping[str, Any],
        deadline: float | None,
        pacing: FollowPacing,
    ) -> AsyncGenerator[PromptEvent, None]:
        """Builds the variant's graph, queues it and drives a :class:`PromptTracker`
        until the prompt ends."""
        catalog = (
            NodeCatalog(await self.client.object_info())
            if spec.workflow.model_choice is not None
            else None
        )
        built = build_variant(spec, catalog)
        # Without the socket the prompt's messages would be missed; wait a little for
        # it, then rely on polling if it stays down.
        left = _SOCKET_WAIT_S if deadline is None else deadline - time.monotonic()
        await self.client.wait_connected(min(_SOCKET_WAIT_S, max(0.0, left)))
        subscription = self.client.subscribe(prompt_id)
        try:
            try:
                await self.client.queue_prompt(
                    built.graph, prompt_id, extra_data={"imagegen": dict(labels)}, deadline=deadline
                )
            except ComfyUIRefusedError as e:
                raise PromptRefusedError(
                    str(e),
                    backend=e.backend,
                    problems=naming_fields(list(e.problems), built.origins),
                    reason=e.reason,
                ) from e
            tracker = PromptTracker(
                prompt_id,
                backend=self.name,
                progress_node=built.sampler_node,
                output_node=built.output_node,
            )
            steps: deque[TrackerStep] = deque(tracker.begin())
            while True:
                while steps:
                    step = steps.popleft()
                    if isinstance(step, ReadQueue):
                        steps.extend(tracker.on_queue(await self._queue()))
                    elif isinstance(step, ReadHistory):
                        steps.extend(tracker.on_history(await self._history(prompt_id)))
                    elif isinstance(step, PromptFinished):
                        yield dataclasses.replace(
                            step, recipe=built.graph, models=_model_files(built.graph)
                        )
                        return
                    else:
                        yield step
                subscription.waiting = not tracker.started
                event = await subscription.next(tracker.quiet_s(pacing))
                if event is None:
                    steps.extend(tracker.on_quiet())
                elif isinstance(event, SocketState):
                    steps.extend(tracker.on_socket(event.connected))
                elif isinstance(event, PreviewFrame):
                    steps.extend(tracker.on_preview(event.image, event.mime_type))
                elif isinstance(event, QueueSnapshot):
                    steps.extend(tracker.on_queue(event))
                else:
                    steps.extend(tracker.on_message(event.type, event.data))
        finally:
            self.client.unsubscribe(subscription)

    async def _queue(self) -> QueueSnapshot | None:
        try:
            return await self.client.queue_snapshot(since=time.monotonic())
        except ComfyUIError:
            return None

    async def _history(self, prompt_id: str) -> dict[str, Any] | None:
        try:
            return await self.client.history(prompt_id)
        except ComfyUIError as e:
            raise ComfyUIUnavailableError(
                f"lost contact while rendering: {e}", backend=e.backend
            ) from e

    async def fetch(self, result: StoredResult) -> bytes:
        """``GET /view`` of the saved image."""
        return await self.client.view(result)

    async def withdraw(self, prompt_ids: Sequence[str]) -> tuple[str, ...]:
        """Deletes the pending ones, interrupts each (only the running one stops), then
        reads ``/queue``.

        Pending ones are deleted first: interrupting first would let the worker start the
        next of them before the delete lands.
        """
        await self.client.delete_pending(prompt_ids)
        for prompt_id in prompt_ids:
            await self.client.interrupt(prompt_id)
        snapshot = await self.client.queue_snapshot(since=time.monotonic())
        return tuple(p for p in prompt_ids if snapshot.contains(p))


def _model_files(graph: Mapping[str, Any]) -> tuple[str, ...]:
    """The model files a graph loads, in node order."""
    return tuple(
        value
        for node in graph.values()
        for name, value in node.get("inputs", {}).items()
        if name in MODEL_FILE_INPUTS and isinstance(value, str)
    )
