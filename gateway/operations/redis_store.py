"""The job store that gateway replicas share: Redis, through redis-py's asyncio client.

Keys (``<p>`` is the configured prefix)::

    <p>:queue                   stream of submitted job ids, consumer group "runners"
    <p>:job:<id>                hash: the job record (caller, request, state, metadata, ...)
    <p>:events:<id>             stream of the job's events, entry ids 0-1, 0-2, ... = event index
    <p>:idem:<caller>:<key>     the job id of a caller's request id (AIP-155)
    <p>:caller:<caller>         sorted set of the caller's job ids by submit time
    <p>:finished                sorted set of finished job ids by end time (the byte budget)

- **Exactly one runner per job.** Runners read the queue with ``XREADGROUP``: each entry
  goes to one consumer. A runner renews its claim while it works (``XCLAIM ... JUSTID``
  resets the entry's idle time); a runner that died stops renewing, and after the lease
  another takes the entry over with ``XAUTOCLAIM`` and re-runs the job with its fixed
  seed. A finished job's entry is acknowledged and deleted.
- **Any replica serves any job.** Records and events live in Redis; watchers follow a
  job's event stream with ``XREAD BLOCK``; a cancel is a flag the runner polls.
- **Expiry by TTLs.** When a job finishes, its keys get the retention time as TTL; the
  byte budget removes the oldest finished jobs beyond it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from gateway.operations.store import (
    JobPage,
    JobRecord,
    JobStoreUnavailableError,
    StoreLimits,
    decode_page_token,
    encode_page_token,
    unavailable_on,
)
from services.common.logs import get_logger

__all__ = ["RedisJobStore"]

_log = get_logger(__name__)
_guarded = unavailable_on("redis", RedisError)
_GROUP = "runners"
# Longest single block on Redis while a watcher waits for events; a finished job is
# noticed within this.
_WATCH_BLOCK_MS = 1000
_EVENT_FIELD = b"e"
_END_FIELD = b"end"


def _to_hash(job: JobRecord) -> dict[str, bytes | str | int | float]:
    return {
        "id": job.id,
        "caller": job.caller,
        "request_id": job.request_id,
        "request": job.request,
        "state": job.state,
        "metadata": job.metadata,
        "error": job.error,
        "created": job.created,
        "updated": job.updated,
        "finished": "" if job.finished is None else job.finished,
        "size": job.size,
        "cancel_requested": int(job.cancel_requested),
    }


def _from_hash(fields: Mapping[bytes, bytes]) -> JobRecord:
    finished = fields.get(b"finished", b"")
    return JobRecord(
        id=fields[b"id"].decode(),
        caller=fields[b"caller"].decode(),
        request_id=fields[b"request_id"].decode(),
        request=fields[b"request"],
        state=int(fields[b"state"]),
        metadata=fields.get(b"metadata", b""),
        error=fields.get(b"error", b""),
        created=float(fields[b"created"]),
        updated=float(fields[b"updated"]),
        finished=float(finished) if finished else None,
        size=int(fields.get(b"size", b"0")),
        cancel_requested=fields.get(b"cancel_requested") == b"1",
    )


class RedisJobStore:
    """Jobs in Redis, shared by every gateway replica that connects to it.

    Args:
        client: A redis-py asyncio client (bytes responses); closed by :meth:`close`.
        limits: Retention and lease.
        consumer: This runner's name in the consumer group (unique per replica).
        prefix: Prefix of every key.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        limits: StoreLimits,
        *,
        consumer: str,
        prefix: str = "imagegen:jobs",
    ) -> None:
        # redis-py types each asyncio command as "awaitable or not"; Any keeps that out.
        self._redis: Any = client
        self._limits = limits
        self._consumer = consumer
        self._prefix = prefix
        self._queue = f"{prefix}:queue"
        self._entries: dict[str, bytes] = {}
        self._group_ready = False

    @classmethod
    def from_url(
        cls, url: str, limits: StoreLimits, *, consumer: str, prefix: str = "imagegen:jobs"
    ) -> RedisJobStore:
        """A store on a new client of the Redis at ``url`` (``redis://host:port/db``)."""
        client = aioredis.Redis.from_url(url, decode_responses=False)
        return cls(client, limits, consumer=consumer, prefix=prefix)

    def _job(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

    def _events(self, job_id: str) -> str:
        return f"{self._prefix}:events:{job_id}"

    def _idem(self, caller: str, request_id: str) -> str:
        return f"{self._prefix}:idem:{caller}:{request_id}"

    def _caller(self, caller: str) -> str:
        return f"{self._prefix}:caller:{caller}"

    @property
    def _finished(self) -> str:
        return f"{self._prefix}:finished"

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(self._queue, _GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    @_guarded
    async def submit(self, job: JobRecord) -> JobRecord:
        if job.request_id:
            idem = self._idem(job.caller, job.request_id)
            if not await self._redis.set(idem, job.id, nx=True):
                earlier_id = await self._redis.get(idem)
                earlier = None if earlier_id is None else await self.get(earlier_id.decode())
                if earlier is not None:
                    return earlier
                await self._redis.set(idem, job.id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._job(job.id), mapping=_to_hash(job))
            pipe.zadd(self._caller(job.caller), {job.id: job.created})
            pipe.xadd(self._queue, {"job": job.id})
            await pipe.execute()
        return job

    @_guarded
    async def get(self, job_id: str) -> JobRecord | None:
        fields: dict[bytes, bytes] = await self._redis.hgetall(self._job(job_id))
        return _from_hash(fields) if fields.get(b"id") else None

    @_guarded
    async def list_jobs(
        self, caller: str, *, states: frozenset[int], page_size: int, page_token: str
    ) -> JobPage:
        position = decode_page_token(page_token)
        key = self._caller(caller)
        page = JobPage()
        while len(page.jobs) <= page_size:
            ids: list[bytes] = await self._redis.zrevrange(key, position, position + page_size)
            if not ids:
                return page
            for job_id in ids:
                position += 1
                job = await self.get(job_id.decode())
                if job is None:  # expired: its TTL removed the record
                    await self._redis.zrem(key, job_id)
                    position -= 1
                    continue
                if states and job.state not in states:
                    continue
                if len(page.jobs) == page_size:
                    page.next_token = encode_page_token(position - 1)
                    return page
                page.jobs.append(job)
        return page

    @_guarded
    async def take(self, *, wait_s: float) -> JobRecord | None:
        await self._ensure_group()
        # A job whose runner stopped renewing its claim for a lease is taken over first.
        # Redis 6.2 answers [next, entries], 7.0 adds the deleted ids.
        autoclaimed = await self._redis.xautoclaim(
            self._queue,
            _GROUP,
            self._consumer,
            min_idle_time=int(self._limits.lease_s * 1000),
            start_id="0-0",
            count=1,
        )
        entries: list[tuple[bytes, dict[bytes, bytes]]] = list(autoclaimed[1])
        if not entries:
            answer = await self._redis.xreadgroup(
                _GROUP,
                self._consumer,
                {self._queue: ">"},
                count=1,
                block=max(1, int(wait_s * 1000)),
            )
            entries = [entry for _, stream_entries in answer or [] for entry in stream_entries]
        if not entries:
            return None
        entry_id, fields = entries[0]
        job = await self.get(fields[b"job"].decode()) if fields else None
        if job is None or job.done:
            await self._release(entry_id)
            return None
        self._entries[job.id] = entry_id
        return job

    async def _release(self, entry_id: bytes) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._queue, _GROUP, entry_id)
            pipe.xdel(self._queue, entry_id)
            await pipe.execute()

    @_guarded
    async def keep(self, job_id: str) -> None:
        entry_id = self._entries.get(job_id)
        if entry_id is not None:
            await self._redis.xclaim(
                self._queue, _GROUP, self._consumer, 0, [entry_id], justid=True
            )

    @_guarded
    async def append(
        self, job_id: str, index: int, event: bytes, metadata: bytes, *, state: int
    ) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self._events(job_id), {_EVENT_FIELD: event}, id=f"0-{index}")
            pipe.hset(
                self._job(job_id),
                mapping={"metadata": metadata, "state": state, "updated": time.time()},
            )
            pipe.hincrby(self._job(job_id), "size", len(event))
            await pipe.execute()

    @_guarded
    async def finish(self, job_id: str, *, state: int, metadata: bytes, error: bytes) -> None:
        now = time.time()
        ttl = max(1, int(self._limits.retention_s))
        job = await self.get(job_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._job(job_id),
                mapping={
                    "state": state,
                    "metadata": metadata,
                    "error": error,
                    "updated": now,
                    "finished": now,
                },
            )
            # An end mark wakes the watchers blocked on the stream; its automatic id sorts
            # after every event id (0-N), and no event can be added after it.
            pipe.xadd(self._events(job_id), {_END_FIELD: b""})
            pipe.expire(self._job(job_id), ttl)
            pipe.expire(self._events(job_id), ttl)
            pipe.zadd(self._finished, {job_id: now})
            if job is not None and job.request_id:
                pipe.expire(self._idem(job.caller, job.request_id), ttl)
            await pipe.execute()
        entry_id = self._entries.pop(job_id, None)
        if entry_id is not None:
            await self._release(entry_id)

    async def events(self, job_id: str, *, after: int) -> AsyncIterator[tuple[int, bytes]]:
        try:
            async for item in self._follow(job_id, after):
                yield item
        except RedisError as e:
            raise JobStoreUnavailableError("redis", e) from e

    async def _follow(self, job_id: str, after: int) -> AsyncIterator[tuple[int, bytes]]:
        stream, last = self._events(job_id), after
        while True:
            done = await self._done_or_gone(job_id)
            entries = await self._redis.xrange(stream, min=f"0-{last + 1}", max="+")
            for entry_id, fields in entries:
                if _EVENT_FIELD not in fields:  # the end mark
                    return
                last = int(entry_id.split(b"-")[1])
                yield last, fields[_EVENT_FIELD]
            if done:
                # Read after the job was seen done: nothing can follow what came back.
                return
            if not entries:
                await self._redis.xread({stream: f"0-{last}"}, count=1, block=_WATCH_BLOCK_MS)

    async def _done_or_gone(self, job_id: str) -> bool:
        state: bytes | None = await self._redis.hget(self._job(job_id), "finished")
        return state is None or state != b""

    @_guarded
    async def request_cancel(self, job_id: str) -> None:
        if await self._redis.exists(self._job(job_id)):
            await self._redis.hset(self._job(job_id), "cancel_requested", 1)

    @_guarded
    async def cancel_requested(self, job_id: str) -> bool:
        flag: bytes | None = await self._redis.hget(self._job(job_id), "cancel_requested")
        return flag is None or flag == b"1"

    @_guarded
    async def delete(self, job_id: str) -> None:
        job = await self.get(job_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._job(job_id), self._events(job_id))
            pipe.zrem(self._finished, job_id)
            if job is not None:
                pipe.zrem(self._caller(job.caller), job_id)
                if job.request_id:
                    pipe.delete(self._idem(job.caller, job.request_id))
            await pipe.execute()

    @_guarded
    async def purge(self) -> int:
        cutoff = time.time() - self._limits.retention_s
        finished: list[tuple[bytes, float]] = await self._redis.zrevrange(
            self._finished, 0, -1, withscores=True
        )
        kept_bytes, removed = 0, 0
        for raw_id, ended in finished:
            job_id = raw_id.decode()
            size: Any = await self._redis.hget(self._job(job_id), "size")
            if size is None:  # its TTL already removed it
                await self._redis.zrem(self._finished, job_id)
                continue
            kept_bytes += int(size)
            if ended < cutoff or kept_bytes > self._limits.retention_bytes:
                await self.delete(job_id)
                removed += 1
        return removed

    async def close(self) -> None:
        """Leaves the consumer group unless jobs are still pending on this runner (they wait
        there for a takeover), then closes the client."""
        try:
            if self._group_ready:
                pending = await self._redis.xpending_range(
                    self._queue, _GROUP, min="-", max="+", count=1, consumername=self._consumer
                )
                if not pending:
                    await self._redis.xgroup_delconsumer(self._queue, _GROUP, self._consumer)
        except RedisError:
            _log.warning("could not leave the job queue's consumer group", exc_info=True)
        finally:
            await self._redis.aclose()
