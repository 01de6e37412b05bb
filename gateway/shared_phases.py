"""Phases of model calls shared by every gateway replica, through Redis.

:class:`~gateway.scheduler.PhaseScheduler` groups the model calls of one gateway
process. Replicas that share one model server (one GPU) would each run their own phases
and the server would still swap models between them. :class:`SharedPhaseScheduler`
keeps the phase state in Redis instead, so all replicas admit calls by the same phases
and under the same rules (the scheduler module's docstring), with two additions for
replicas that can die:

- **Leases.** A call inside a phase (a *holder*) and a call waiting for one (a *waiter*)
  are entries with a lease; the replica renews its holders' leases while the calls run,
  and a waiter renews its own each time it looks. A replica killed with ``kill -9``
  stops renewing, and its entries are forgotten once their lease runs out, so it never
  wedges the phase for longer than ``lease_s``. The same holds for a replica that dies
  while running a phase's entry hook: the next replica with a call for that phase runs
  the hook again.
- **Wake-ups.** Every change of phase or release is published on a channel every
  replica subscribes to; a waiter also looks again at least every ``poll_s`` (and when
  a drained phase's gathering ends), so a lost message only costs a poll.

One Lua script (``shared_phases.lua``) takes every decision atomically on Redis's
clock, the one clock all replicas share. Keys (``<p>`` is the configured prefix)::

    <p>:state     hash: current phase, epoch, start time, gathering end, entry-hook owner
    <p>:holders   sorted set "phase|call" by lease end
    <p>:waiters   sorted set "phase|call" by lease end
    <p>:since     hash "phase|call" -> when it began waiting
    <p>:starts    hash phase -> how many times it started (a measure of model swaps)

When Redis cannot be reached, calls are admitted at once (no grouping, a logged
warning): grouping saves model loads, and a store outage must not stop requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.scheduler import Admission, EntryHook, run_entry_hook
from services.common.logs import get_logger

__all__ = ["SharedPhaseScheduler"]

_log = get_logger(__name__)
_SCRIPT = resources.files(__package__).joinpath("shared_phases.lua").read_text()
_REDIS_TIMEOUT_S = 1.0


class SharedPhaseScheduler:
    """Admits calls phase by phase across every gateway sharing one Redis.

    Args:
        url: The Redis, ``redis://host:port/db``.
        prefix: Prefix of every key and of the wake-up channel.
        max_wait_s: Longest wait for a phase change before running beside the other phase.
        join_window_s: How long after another phase's first call began waiting newcomers
            may still join the running phase; at most half of ``max_wait_s``.
        gather_s: How long a drained phase stays open for its own calls.
        exclusive: Phases that never overlap with another phase.
        entry_hooks: Per phase, what to run each time it starts (in the replica whose
            call opens the phase).
        lease_s: How long a replica's calls count without being renewed.
        poll_s: Longest a waiter goes without looking again.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        max_wait_s: float = 5.0,
        join_window_s: float = 2.0,
        gather_s: float = 0.25,
        exclusive: Collection[str] = (),
        entry_hooks: Mapping[str, EntryHook] | None = None,
        lease_s: float = 10.0,
        poll_s: float = 0.25,
    ) -> None:
        # Every step waits at most _REDIS_TIMEOUT_S for Redis, so an unreachable store
        # degrades to ungrouped calls instead of holding them; the subscription blocks
        # on its reads, so it has a client of its own.
        self._client = aioredis.Redis.from_url(
            url, socket_connect_timeout=_REDIS_TIMEOUT_S, socket_timeout=_REDIS_TIMEOUT_S
        )
        self._listener = aioredis.Redis.from_url(url, socket_connect_timeout=_REDIS_TIMEOUT_S)
        self._keys = [f"{prefix}:{k}" for k in ("state", "holders", "waiters", "since", "starts")]
        self._channel = f"{prefix}:wake"
        self._starts_key = self._keys[4]
        self._lease_s = lease_s
        self._poll_s = min(poll_s, lease_s / 4)
        self._hooks = dict(entry_hooks or {})
        self._args = [
            str(round(lease_s * 1000)),
            str(round(min(join_window_s, max_wait_s / 2) * 1000)),
            str(round(gather_s * 1000)),
            str(round(max_wait_s * 1000)),
            "," + ",".join(sorted(exclusive)) + ",",
            "," + ",".join(sorted(self._hooks)) + ",",
            self._channel,
        ]
        self._script = self._client.register_script(_SCRIPT)
        self._replica = uuid.uuid4().hex[:12]
        self._held: set[str] = set()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def close(self) -> None:
        """Stops listening and renewing, and closes the Redis clients."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._client.aclose()
        await self._listener.aclose()

    async def phase_starts(self) -> dict[str, int]:
        """How many times each phase started, over all replicas."""
        starts: dict[bytes, bytes] = await self._client.hgetall(self._starts_key)  # type: ignore[misc]
        return {k.decode(): int(v) for k, v in starts.items()}

    @contextlib.asynccontextmanager
    async def phase(self, name: str, *, timeout_s: float | None = None) -> AsyncIterator[Admission]:
        """Waits until calls of phase ``name`` may run on every replica, and holds the
        phase meanwhile (as :meth:`~gateway.scheduler.PhaseScheduler.phase` does in one)."""
        self._start_background()
        member = f"{name}|{self._replica}-{uuid.uuid4().hex[:12]}"
        admission = await self._acquire(member, name, timeout_s)
        try:
            yield admission
        finally:
            self._held.discard(member)
            await asyncio.shield(self._run("release", member, default=None))

    async def _acquire(self, member: str, name: str, timeout_s: float | None) -> Admission:
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    changed = self._changed
                    answer = await self._run("acquire", member, default=["bypassed", "[]"])
                    verdict = answer[0]
                    if verdict == "enter":
                        answer = await self._enter(member, name)
                        verdict = answer[0]
                    if verdict in ("admitted", "bypassed"):
                        self._held.add(member)
                        return Admission(
                            phase=name,
                            waited_s=time.monotonic() - started,
                            bypassed=verdict == "bypassed",
                            warnings=json.loads(answer[1]),
                        )
                    retry_s = float(answer[2]) / 1000 if len(answer) > 2 else self._poll_s
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(retry_s, self._poll_s)):
                            await changed.wait()
        except BaseException:
            # Not admitted (or admitted just as the caller went away): leave no trace.
            self._held.discard(member)
            await asyncio.shield(self._run("leave", member, default=None))
            raise

    async def _enter(self, member: str, name: str) -> list[Any]:
        """Runs the phase's entry hook for everyone, then opens the phase."""
        self._held.add(member)  # the renewer keeps the hook's lease alive
        warnings = await run_entry_hook(self._hooks.get(name), name)
        answer: list[Any] = await self._run(
            "opened", member, json.dumps(warnings), default=["admitted", "[]"]
        )
        return answer

    async def _run(self, op: str, member: str, *extra: str, default: Any) -> Any:
        """One step of the script; ``default`` when Redis cannot be reached."""
        try:
            answer = await self._script(keys=self._keys, args=[op, member, *self._args, *extra])
        except RedisError as e:
            _log.warning(
                "phase store (redis) unreachable; %s without grouping: %s", op, e,
                extra={"member": member},
            )  # fmt: skip
            return default
        return [a.decode() if isinstance(a, bytes) else a for a in answer]

    def _start_background(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="phases-listen"),
                asyncio.create_task(self._renew(), name="phases-renew"),
            ]

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _listen(self) -> None:
        """Wakes the local waiters on every published change; resubscribes after errors."""
        while True:
            try:
                async with self._listener.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._wake()
            except RedisError:
                await asyncio.sleep(self._poll_s)

    async def _renew(self) -> None:
        """Renews the leases of this replica's holders (and of an entry hook it runs)."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            if self._held:
                await self._run("renew", " ".join(sorted(self._held)), default=None)
