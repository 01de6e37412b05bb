"""Phases for the model calls of concurrent requests, so one GPU does not swap per request.

Ollama on one GPU holds one model at a time: a vision call (LLaVA) after a planner call
(GPT-OSS) unloads one model and loads the other, seconds each way. Requests that arrive
together would alternate ``vision, planner, vision, planner…`` and pay a swap per call.
The scheduler admits calls by *phase* instead: every waiting analysis, then every
waiting plan, then the analyses that arrived meanwhile, and so on::

    async with scheduler.phase("vision") as admission:
        analysis = await vision.AnalyzeImage(...)

Rules:

- An idle scheduler admits a call at once, so a lone request is never held back.
- A call joins the running phase, whose model is loaded, even while calls of another
  phase wait, but only for ``join_window_s`` after the first of them began waiting;
  later it queues behind them, which keeps either kind from starving the other.
  (Requests arrive spread out: without the window the second kind's first call would
  stop the first kind's later arrivals at the door and the phases would alternate.)
- When the running phase drains while calls of another phase wait, or after it served
  several calls (a burst, whose later requests may still be arriving), it stays open
  ``gather_s`` more for calls of its own kind; then the phase whose caller has waited
  longest goes next, and all of its waiting calls are admitted together. A phase that
  served one call and drains with nobody waiting ends at once: a lone request's next
  call is not held back.
- A call waits at most ``max_wait_s`` for a phase change; then it runs beside the other
  phase (one swap is cheaper than an unbounded delay). *Exclusive* phases never overlap
  with anything: in single-GPU mode the render phase must not share the GPU with the
  language models, so neither side may jump the queue.
- A phase may have an entry hook, run once each time the phase starts (e.g. have the
  language models released before the render phase): a burst of renders pays it once.

With ``enabled=False`` every call is admitted at once (entry hooks still run, per call).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from services.common.logs import get_logger

__all__ = ["Admission", "EntryHook", "PhaseGate", "PhaseScheduler", "run_entry_hook"]

_log = get_logger(__name__)

EntryHook = Callable[[], Awaitable[list[str]]]
"""Runs when a phase starts; returns warnings for the calls it admits (empty when all went well)."""


@dataclass
class Admission:
    """How a call got into its phase.

    Attributes:
        phase: The phase entered.
        waited_s: Seconds spent waiting for it.
        bypassed: True when the call ran beside another phase after ``max_wait_s``.
        warnings: Notices from the phase's entry hook (e.g. a model that would not unload).
    """

    phase: str
    waited_s: float = 0.0
    bypassed: bool = False
    warnings: list[str] = field(default_factory=list)


class PhaseGate(Protocol):
    """What the orchestrator needs of a scheduler: this process's
    :class:`PhaseScheduler`, or :class:`~gateway.shared_phases.SharedPhaseScheduler` for
    replicas sharing one model server."""

    def phase(
        self, name: str, *, timeout_s: float | None = None
    ) -> AbstractAsyncContextManager[Admission]:
        """Waits until calls of phase ``name`` may run, and holds the phase meanwhile."""
        ...


async def run_entry_hook(hook: EntryHook | None, name: str) -> list[str]:
    """Runs a phase's entry hook; a failure becomes a warning for the calls it admits.

    Args:
        hook: The hook; None does nothing.
        name: The phase, for the log and the warning.

    Returns:
        The hook's warnings, or one saying it failed.
    """
    if hook is None:
        return []
    try:
        return await hook()
    except asyncio.CancelledError:
        raise
    except Exception as e:
        # A failed hook must not wedge every waiting call; they run and are told.
        _log.warning("entry hook of phase %s failed", name, exc_info=True)
        return [f"preparing the {name} phase failed: {type(e).__name__}: {e}"]


@dataclass(eq=False)
class _Waiter:
    phase: str
    since: float
    admitted: asyncio.Future[list[str]]


class PhaseScheduler:
    """Admits calls phase by phase (see the module docstring).

    Args:
        enabled: False admits every call at once (no grouping).
        max_wait_s: Longest wait for a phase change before running beside the other phase.
        join_window_s: How long after another phase's first call began waiting newcomers
            may still join the running phase; at most half of ``max_wait_s``, so the
            running phase drains before a waiting call would run beside it.
        gather_s: How long a drained phase stays open for its own calls before another
            phase's waiting calls take over.
        exclusive: Phases that never overlap with another phase.
        entry_hooks: Per phase, what to run each time it starts.
        clock: Monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        max_wait_s: float = 5.0,
        join_window_s: float = 2.0,
        gather_s: float = 0.25,
        exclusive: Collection[str] = (),
        entry_hooks: Mapping[str, EntryHook] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.max_wait_s = max_wait_s
        self.join_window_s = min(join_window_s, max_wait_s / 2)
        self.gather_s = gather_s
        self.exclusive = frozenset(exclusive)
        self._hooks = dict(entry_hooks or {})
        self._clock = clock
        self._current: str | None = None
        self._entering = False
        self._active: collections.Counter[str] = collections.Counter()
        self._queue: list[_Waiter] = []
        self._hook_task: asyncio.Task[None] | None = None
        self._gather_spent = False
        self._gathering: asyncio.TimerHandle | None = None
        self._served = 0  # calls admitted since the current phase started
        self.phase_starts: collections.Counter[str] = collections.Counter()
        """How many times each phase started (a measure of model swaps)."""

    @property
    def current(self) -> str | None:
        """The phase admitting calls now; None when idle."""
        return self._current

    def running(self, phase: str) -> int:
        """How many calls of ``phase`` are running now."""
        return self._active[phase]

    def waiting(self, phase: str | None = None) -> int:
        """How many calls (of ``phase``, or of any) wait for admission."""
        return sum(1 for w in self._queue if phase is None or w.phase == phase)

    @contextlib.asynccontextmanager
    async def phase(self, name: str, *, timeout_s: float | None = None) -> AsyncIterator[Admission]:
        """Waits until calls of phase ``name`` may run, and holds the phase meanwhile.

        Args:
            name: The phase, e.g. ``"vision"``, ``"planner"`` or ``"render"``.
            timeout_s: Longest wait for admission; None waits as long as it takes.

        Yields:
            How the call was admitted.

        Raises:
            TimeoutError: Not admitted within ``timeout_s``.
        """
        admission = await self._acquire(name, timeout_s)
        try:
            yield admission
        finally:
            self._release(name)

    # ------------------------------------------------------------------ admission

    async def _acquire(self, name: str, timeout_s: float | None) -> Admission:
        if not self.enabled:
            self._active[name] += 1
            self.phase_starts[name] += 1
            try:
                warnings = await self._run_hook(name)
            except BaseException:
                self._active[name] -= 1
                raise
            return Admission(phase=name, warnings=warnings)

        if self._may_join(name):
            self._active[name] += 1
            return Admission(phase=name)

        started = self._clock()
        waiter = _Waiter(name, started, asyncio.get_running_loop().create_future())
        self._queue.append(waiter)
        self._advance()
        try:
            async with asyncio.timeout(timeout_s):
                bypassed = await self._wait(waiter)
        except BaseException:
            if waiter in self._queue:
                self._queue.remove(waiter)
            elif waiter.admitted.done() and not waiter.admitted.cancelled():
                # Admitted just as the caller went away: give the slot back.
                self._release(name)
            self._advance()
            raise
        warnings = [] if bypassed else waiter.admitted.result()
        return Admission(
            phase=name, waited_s=self._clock() - started, bypassed=bypassed, warnings=warnings
        )

    def _may_join(self, name: str) -> bool:
        if self._entering:
            return False
        if self._current is None:
            # Idle: only phases without an entry hook may start inline; the others start
            # through _advance so their hook runs once for everyone queued meanwhile.
            if name in self._hooks or self._queue or self._busy_beside(name):
                return False
            self._current = name
            self.phase_starts[name] += 1
            self._served = 1
            return True
        if self._current != name or self._clock() >= self._queue_closes_at(name):
            return False
        self._gather_spent = False
        self._served += 1
        return True

    def _queue_closes_at(self, name: str) -> float:
        """When newcomers of phase ``name`` stop joining it: ``join_window_s`` after the
        first call of another phase began waiting."""
        since = min((w.since for w in self._queue if w.phase != name), default=None)
        return float("inf") if since is None else since + self.join_window_s

    def _busy_beside(self, name: str) -> bool:
        """Whether calls of another phase still run (calls that bypassed the queue)."""
        return any(count for phase, count in self._active.items() if phase != name)

    async def _wait(self, waiter: _Waiter) -> bool:
        """Waits for admission; True when the wait ran out and the call bypasses."""
        if self._may_bypass(waiter.phase):
            done, _ = await asyncio.wait({waiter.admitted}, timeout=self.max_wait_s)
            if not done and self._may_bypass(waiter.phase) and waiter in self._queue:
                self._queue.remove(waiter)
                self._active[waiter.phase] += 1
                _log.info(
                    "phase wait ran out; running beside the current phase",
                    extra={"phase": waiter.phase, "current": self._current},
                )
                return True
        await asyncio.shield(waiter.admitted)
        return False

    def _may_bypass(self, name: str) -> bool:
        return name not in self.exclusive and self._current not in self.exclusive

    def _release(self, name: str) -> None:
        self._active[name] -= 1
        if self._active[name] <= 0:
            del self._active[name]
        self._advance()

    def _advance(self) -> None:
        """Starts the next phase when the current one has drained."""
        if self._entering:
            return
        if self._current is not None and self._active[self._current] > 0:
            return
        nxt = self._next_phase()
        if (
            self._current is not None
            and nxt != self._current
            and (nxt is not None or self._served > 1)
            and self._still_gathering()
        ):
            return
        if nxt is None:
            self._current = None
            self._gather_spent = False
            return
        if (nxt in self.exclusive or self._current in self.exclusive) and self._active:
            # Bypassing calls of another phase still hold the GPU; their release
            # calls _advance again.
            self._current = None
            return
        self._current = nxt
        self.phase_starts[nxt] += 1
        self._served = 0
        if nxt in self._hooks:
            self._entering = True
            self._hook_task = asyncio.create_task(self._enter(nxt), name=f"enter-{nxt}")
        else:
            self._admit_all(nxt, [])

    def _still_gathering(self) -> bool:
        """Whether the drained current phase still stays open ``gather_s`` for its own
        calls (a timer advances the scheduler when the time is up)."""
        if self._gathering is not None:
            return True
        if not self._gather_spent and self.gather_s > 0:
            self._gathering = asyncio.get_running_loop().call_later(self.gather_s, self._gathered)
            return True
        self._gather_spent = False
        return False

    def _gathered(self) -> None:
        self._gathering = None
        self._gather_spent = True
        self._advance()

    def _next_phase(self) -> str | None:
        others = [w for w in self._queue if w.phase != self._current]
        pool = others or self._queue
        if not pool:
            return None
        return min(pool, key=lambda w: w.since).phase

    async def _enter(self, name: str) -> None:
        warnings: list[str] = []
        try:
            warnings = await self._run_hook(name)
        finally:
            self._entering = False
            self._admit_all(name, warnings)
            self._hook_task = None

    async def _run_hook(self, name: str) -> list[str]:
        return await run_entry_hook(self._hooks.get(name), name)

    def _admit_all(self, name: str, warnings: list[str]) -> None:
        admitted = [w for w in self._queue if w.phase == name]
        self._queue = [w for w in self._queue if w.phase != name]
        for waiter in admitted:
            self._active[name] += 1
            self._served += 1
            waiter.admitted.set_result(list(warnings))
        if not admitted and self._active[name] <= 0:
            # Everyone who wanted this phase left while its hook ran.
            self._active.pop(name, None)
            self._advance()
