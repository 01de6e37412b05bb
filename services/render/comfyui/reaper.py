"""Withdrawn prompts watched until ComfyUI no longer holds them.

ComfyUI honours an interrupt only when the running node ends — a sampling step, or a
text-encode node that takes half a minute on a slow device — so one check right after
the call proves nothing. Each backend has one :class:`WithdrawalReaper`; every prompt it
is given is watched until it is gone::

    pending  → deleted from the queue (again on every sweep: a delete may cross the
               worker taking it)
    running  → stopped once, if it is ours (the running prompt is read first; newer
               servers cancel the job itself, 0.3.64 gets a targeted ``/interrupt``);
               stopped again only when it still runs after a node boundary (it was seen
               at a new node on two sweeps), or — when this socket does not hear its
               nodes — after ``reinterrupt_s``
    gone     → its history entry (an interrupted prompt leaves one) is deleted

Only a prompt still held after ``bound_s`` is an error; it is then given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from services.common.logs import get_logger
from services.render.comfyui.client import ComfyUIClient
from services.render.comfyui.errors import ComfyUIError
from services.render.comfyui.messages import QueueSnapshot
from services.render.metrics import PROMPTS_AWAITING_WITHDRAWAL

__all__ = ["WithdrawalReaper"]

_log = get_logger(__name__)

_NOT_YET = "\0not interrupted"


@dataclass
class _Watched:
    """One withdrawn prompt.

    Attributes:
        since: When it was withdrawn (monotonic).
        interrupted_at: When it was last interrupted.
        interrupted_node: The node it ran then (``None``: unknown); ``_NOT_YET`` before.
        last_node: The node seen on the previous sweep.
    """

    since: float
    interrupted_at: float = 0.0
    interrupted_node: str | None = _NOT_YET
    last_node: str | None = None


class WithdrawalReaper:
    """Watches one backend's withdrawn prompts until they are gone (see the module).

    Args:
        client: The backend's transport.
        bound_s: Longest watch of one prompt; exceeding it is logged as an error.
        poll_s: Pause between sweeps.
        reinterrupt_s: When the running node cannot be heard, the pause before a
            prompt that still runs is interrupted again.
    """

    def __init__(
        self,
        client: ComfyUIClient,
        *,
        bound_s: float = 600.0,
        poll_s: float = 0.5,
        reinterrupt_s: float = 10.0,
    ) -> None:
        self.client = client
        self.bound_s = bound_s
        self.poll_s = poll_s
        self.reinterrupt_s = reinterrupt_s
        self._watched: dict[str, _Watched] = {}
        self._task: asyncio.Task[None] | None = None
        self._gauge = PROMPTS_AWAITING_WITHDRAWAL.labels(backend=client.url)
        self._gauge.set(0)

    @property
    def awaiting(self) -> tuple[str, ...]:
        """The prompts still being withdrawn."""
        return tuple(self._watched)

    async def withdraw(self, prompt_ids: Sequence[str]) -> tuple[str, ...]:
        """Starts watching the prompts and sweeps once at once.

        Returns:
            The ids the backend still holds after that sweep (they stay watched).

        Raises:
            ComfyUIError: The first sweep could not reach the backend (they stay watched).
        """
        now = time.monotonic()
        for prompt_id in prompt_ids:
            self._watched.setdefault(prompt_id, _Watched(now))
        self._gauge.set(len(self._watched))
        self._ensure_running()
        await self._sweep(list(prompt_ids))
        return tuple(p for p in prompt_ids if p in self._watched)

    async def drain(self, timeout_s: float) -> None:
        """Waits up to ``timeout_s`` for the watched prompts to go, then stops watching."""
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait({task}, timeout=timeout_s)  # it ends once nothing is watched
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"comfyui-reaper {self.client.url}")

    async def _run(self) -> None:
        failing = False
        while self._watched:
            await asyncio.sleep(self.poll_s)
            try:
                await self._sweep(list(self._watched))
                failing = False
            except ComfyUIError as e:
                if not failing:  # said once per outage; the bound decides when it is an error
                    _log.warning(
                        "withdrawal sweep failed; retrying",
                        extra={"backend": self.client.url, "error": str(e)},
                    )
                failing = True
            self._give_up_overdue()

    async def _sweep(self, prompt_ids: list[str]) -> None:
        await self.client.delete_pending(prompt_ids)
        snapshot = await self.client.queue_snapshot(since=time.monotonic())
        gone = [p for p in prompt_ids if p in self._watched and not snapshot.contains(p)]
        for prompt_id in prompt_ids:
            if prompt_id in snapshot.running and prompt_id in self._watched:
                await self._interrupt_if_due(prompt_id, snapshot)
        if gone:  # their history entries go first: a prompt counts as withdrawn after
            try:
                await self.client.forget(gone)
            except ComfyUIError as e:
                _log.warning(
                    "could not delete history entries",
                    extra={"backend": self.client.url, "error": str(e)},
                )
        for prompt_id in gone:
            watched = self._watched.pop(prompt_id, None)
            if watched is None:
                continue  # a concurrent sweep got there first
            _log.info(
                "prompt withdrawn",
                extra={
                    "backend": self.client.url,
                    "prompt_id": prompt_id,
                    "after_s": round(time.monotonic() - watched.since, 3),
                },
            )
        self._gauge.set(len(self._watched))

    async def _interrupt_if_due(self, prompt_id: str, snapshot: QueueSnapshot) -> None:
        watched = self._watched[prompt_id]
        node = self.client.executing_node(prompt_id)
        now = time.monotonic()
        if watched.interrupted_node == _NOT_YET:
            due = True
        elif node is None or watched.interrupted_node is None:
            due = now - watched.interrupted_at >= self.reinterrupt_s
        else:
            # Past a node boundary, and still there one sweep later: the interrupt was lost.
            due = node != watched.interrupted_node and node == watched.last_node
        watched.last_node = node
        if not due or prompt_id not in snapshot.running:
            return
        watched.interrupted_node, watched.interrupted_at = node, now
        await self.client.stop(prompt_id)

    def _give_up_overdue(self) -> None:
        now = time.monotonic()
        for prompt_id, watched in list(self._watched.items()):
            if now - watched.since > self.bound_s:
                del self._watched[prompt_id]
                _log.error(
                    "prompt still on the backend after the withdrawal bound; giving up",
                    extra={
                        "backend": self.client.url,
                        "prompt_id": prompt_id,
                        "bound_s": self.bound_s,
                    },
                )
        self._gauge.set(len(self._watched))
