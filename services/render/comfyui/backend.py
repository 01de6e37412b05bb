"""ComfyUI as a render backend: the transport and the tracker behind the backend protocol."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from typing import Any

from services.common.logs import get_logger
from services.render.backend import (
    BackendOffer,
    FollowPacing,
    GraphProblem,
    PromptEvent,
    PromptFinished,
    PromptRefusedError,
    StoredResult,
    VariantSpec,
)
from services.render.comfyui.catalog import NodeCatalog, check_graph, offer_of
from services.render.comfyui.client import ComfyUIClient
from services.render.comfyui.errors import (
    ComfyUIError,
    ComfyUIRefusedError,
    ComfyUIUnavailableError,
)
from services.render.comfyui.graph import (
    WEBSOCKET_OUTPUT,
    BuiltGraph,
    build_variant,
    naming_fields,
)
from services.render.comfyui.messages import (
    LABELS_KEY,
    PreviewFrame,
    QueueSnapshot,
    SocketState,
)
from services.render.comfyui.reaper import WithdrawalReaper
from services.render.comfyui.tracker import (
    PromptTracker,
    ReadHistory,
    ReadQueue,
    ResultMissedError,
    TrackerStep,
)
from services.render.instance import RenderInstance
from services.render.workflows import MODEL_FILE_INPUTS

__all__ = ["ComfyUIBackend"]

_log = get_logger(__name__)

_SOCKET_WAIT_S = 2.0
"""Longest wait for the websocket before queueing: ComfyUI does not replay messages."""


class ComfyUIBackend:
    """One ComfyUI server as a :class:`~services.render.backend.RenderBackend`.

    Args:
        client: Its transport (pooled HTTP and the shared websocket).
        reaper: Watches withdrawn prompts until they are gone (default: a reaper with
            its default bound).
        drain_s: On close, how long withdrawn prompts are still watched.
        instance: This render process (its prompts are tagged with it); default: one
            named by host and process id.
        orphan_sweep_s: How often the queue is searched for prompts of this instance's
            earlier lives (also once at start).
    """

    def __init__(
        self,
        client: ComfyUIClient,
        *,
        reaper: WithdrawalReaper | None = None,
        drain_s: float = 5.0,
        instance: RenderInstance | None = None,
        orphan_sweep_s: float = 30.0,
    ) -> None:
        self.client = client
        self.reaper = reaper or WithdrawalReaper(client)
        self.instance = instance or RenderInstance.for_port("", 0)
        self._drain_s = drain_s
        self._orphan_sweep_s = orphan_sweep_s
        self._orphans: asyncio.Task[None] | None = None
        # History deletions of finished prompts, running beside their requests.
        self._forgetting: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"ComfyUIBackend({self.client.url!r})"

    @property
    def name(self) -> str:
        """The server's URL."""
        return self.client.url

    def start(self) -> None:
        """Opens the websocket (it reconnects by itself until :meth:`aclose`) and starts
        withdrawing the prompts of this instance's earlier lives."""
        self.client.start()
        if self._orphans is None:
            self._orphans = asyncio.create_task(
                self._sweep_orphans_forever(), name=f"comfyui-orphans {self.name}"
            )

    async def aclose(self) -> None:
        """Finishes deleting history entries and watches withdrawn prompts a little
        longer, then closes the socket and pool."""
        orphans, self._orphans = self._orphans, None
        if orphans is not None:
            orphans.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await orphans
        if self._forgetting:
            await asyncio.wait(set(self._forgetting), timeout=self._drain_s)
        await self.reaper.drain(self._drain_s)
        await self.client.aclose()

    async def withdraw_orphans(self) -> tuple[str, ...]:
        """Withdraws the prompts an earlier life of this instance left queued or running.

        Returns:
            Their ids.

        Raises:
            ComfyUIError: The queue could not be read.
        """
        snapshot = await self.client.queue_snapshot(since=time.monotonic())
        orphans = tuple(
            prompt_id
            for prompt_id, tags in snapshot.labels.items()
            if self.instance.is_earlier_life(tags) and prompt_id not in self.reaper.awaiting
        )
        if orphans:
            _log.warning(
                "withdrawing prompts of an earlier life of this instance",
                extra={"backend": self.name, "instance": self.instance.name, "prompts": orphans},
            )
            await self.reaper.withdraw(orphans)
        return orphans

    async def _sweep_orphans_forever(self) -> None:
        while True:
            try:
                await self.withdraw_orphans()
            except ComfyUIError as e:
                _log.info("orphan sweep skipped", extra={"backend": self.name, "error": str(e)})
            await asyncio.sleep(self._orphan_sweep_s)

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

    async def offer(self) -> BackendOffer:
        """What ``/object_info`` lists now (read afresh: files appear without a restart)."""
        return offer_of(NodeCatalog(await self.client.object_info(refresh=True)))

    async def problems(self, spec: VariantSpec, *, recheck: bool = True) -> list[GraphProblem]:
        """Checks the variant's graph against ``/object_info``, re-read (unless ``recheck``
        is off) when something is missing: model files and custom nodes appear without a
        restart."""
        info = await self.client.object_info()
        catalog = NodeCatalog(info)
        built = build_variant(spec, catalog, websocket_output=WEBSOCKET_OUTPUT in info)
        skip = built.image_inputs
        problems = check_graph(built.graph, catalog, skip=skip)
        if recheck and any(p.is_missing_model or p.kind == "unknown_node" for p in problems):
            info = await self.client.object_info(refresh=True)
            catalog = NodeCatalog(info)
            built = build_variant(spec, catalog, websocket_output=WEBSOCKET_OUTPUT in info)
            problems = check_graph(built.graph, catalog, skip=skip)
        return naming_fields(problems, built.origins)

    async def _refusal(self, error: ComfyUIRefusedError, built: BuiltGraph) -> PromptRefusedError:
        """The refusal, re-checked against a fresh ``/object_info`` when ComfyUI said a value
        is not in its list: a model file removed since the last read is then named with
        what the server has now."""
        problems = naming_fields(list(error.problems), built.origins)
        if any(problem.kind == "not_in_list" for problem in problems):
            try:
                catalog = NodeCatalog(await self.client.object_info(refresh=True))
            except ComfyUIError:
                catalog = None
            if catalog is not None:
                fresh = check_graph(built.graph, catalog, skip=built.image_inputs)
                missing = [p for p in fresh if p.is_missing_model]
                if missing:
                    problems = naming_fields(missing, built.origins)
        return PromptRefusedError(
            str(error), backend=error.backend, problems=problems, reason=error.reason
        )

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
        until the prompt ends.

        A result sent over the socket while it was down is produced once more, under the
        same prompt id, by a graph that saves it (ComfyUI's cache makes that one node).
        """
        info = await self.client.object_info()
        catalog = NodeCatalog(info)
        built = build_variant(spec, catalog, websocket_output=WEBSOCKET_OUTPUT in info)
        # Without the socket the prompt's messages would be missed; wait a little for
        # it, then rely on polling if it stays down.
        left = _SOCKET_WAIT_S if deadline is None else deadline - time.monotonic()
        await self.client.wait_connected(min(_SOCKET_WAIT_S, max(0.0, left)))
        extra_data = {LABELS_KEY: {**labels, **self.instance.tags()}}
        try:
            async for event in self._run(built, prompt_id, extra_data, deadline, pacing):
                yield event
        except ResultMissedError:
            _log.warning(
                "result sent while the websocket was down; saving it instead",
                extra={"backend": self.name, "prompt_id": prompt_id},
            )
            await self._forget(prompt_id)
            built = build_variant(spec, catalog, websocket_output=False)
            async for event in self._run(built, prompt_id, extra_data, deadline, pacing):
                yield event

    async def _run(
        self,
        built: BuiltGraph,
        prompt_id: str,
        extra_data: Mapping[str, Any],
        deadline: float | None,
        pacing: FollowPacing,
    ) -> AsyncGenerator[PromptEvent, None]:
        """Queues ``built`` as ``prompt_id`` and reports on it until it ends."""
        subscription = self.client.subscribe(prompt_id)
        try:
            try:
                await self.client.queue_prompt(
                    built.graph, prompt_id, extra_data=extra_data, deadline=deadline
                )
            except ComfyUIRefusedError as e:
                raise await self._refusal(e, built) from e
            tracker = PromptTracker(
                prompt_id,
                backend=self.name,
                progress_node=built.sampler_node,
                output_node=built.output_node,
                websocket_output=built.graph[built.output_node]["class_type"] == WEBSOCKET_OUTPUT,
            )
            steps: deque[TrackerStep] = deque(tracker.begin())
            while True:
                while steps:
                    step = steps.popleft()
                    if isinstance(step, ReadQueue):
                        steps.extend(tracker.on_queue(await self._queue()))
                    elif isinstance(step, ReadHistory) and await self._has_jobs():
                        steps.extend(tracker.on_job(await self._status(prompt_id, jobs=True)))
                    elif isinstance(step, ReadHistory):
                        entry = await self._status(prompt_id, jobs=False)
                        steps.extend(tracker.on_history(entry))
                    elif isinstance(step, PromptFinished):
                        yield dataclasses.replace(
                            step,
                            recipe=built.graph,
                            models=_model_files(built.graph),
                            forgotten=self._forget_beside(prompt_id),
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
                    steps.extend(
                        tracker.on_preview(
                            event.image, event.mime_type, node=event.node_id, ahead=event.ahead
                        )
                    )
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

    async def _has_jobs(self) -> bool:
        try:
            return await self.client.has_jobs_api()
        except ComfyUIError:
            return False  # /history answers on every version

    async def _status(self, prompt_id: str, *, jobs: bool) -> dict[str, Any] | None:
        """The prompt's job (newer servers) or its history entry."""
        try:
            if jobs:
                return await self.client.job(prompt_id)
            return await self.client.history(prompt_id)
        except ComfyUIError as e:
            raise ComfyUIUnavailableError(
                f"lost contact while rendering: {e}", backend=e.backend
            ) from e

    def _forget_beside(self, prompt_id: str) -> asyncio.Task[None]:
        """Starts deleting the finished prompt's history entry, in a task of its own.

        The result is in hand, so the deletion need not hold it up: it runs while the
        result is finished and sent. It is not part of the request's task, so a caller
        that goes away now does not cut it short, and :meth:`aclose` waits for it.
        """
        task = asyncio.create_task(self._forget(prompt_id), name=f"comfyui-forget {prompt_id}")
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)
        return task

    async def _forget(self, prompt_id: str) -> None:
        """Deletes the finished prompt's history entry: its result is in hand (the image
        itself, or the file name for ``/view``)."""
        try:
            await self.client.forget([prompt_id])
        except ComfyUIError as e:
            _log.warning(
                "could not delete the history entry",
                extra={"backend": self.name, "prompt_id": prompt_id, "error": str(e)},
            )

    async def fetch(self, result: StoredResult) -> bytes:
        """The image the socket delivered, else ``GET /view`` of the saved file."""
        if result.image is not None:
            return result.image
        return await self.client.view(result)

    async def withdraw(self, prompt_ids: Sequence[str]) -> tuple[str, ...]:
        """Hands the prompts to the :class:`WithdrawalReaper`, which deletes the pending
        ones, interrupts ours if it runs, and keeps watching until they are gone.

        Returns:
            The ids still held after the first sweep (still watched).
        """
        return await self.reaper.withdraw(prompt_ids)


def _model_files(graph: Mapping[str, Any]) -> tuple[str, ...]:
    """The model files a graph loads, in node order."""
    return tuple(
        value
        for node in graph.values()
        for name, value in node.get("inputs", {}).items()
        if name in MODEL_FILE_INPUTS and isinstance(value, str)
    )
