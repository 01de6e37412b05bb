"""The job store contract: the SQLite and the Redis store pass the same tests.

Redis is a real server (``redis_server``); each test has its own key prefix.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.operations.redis_store import RedisJobStore
from gateway.operations.sqlite_store import SqliteJobStore
from gateway.operations.store import JobRecord, JobStore, StoreLimits
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2

RUNNING = gateway_pb2.JOB_STATE_RUNNING
SUCCEEDED = gateway_pb2.JOB_STATE_SUCCEEDED


@dataclass
class Stores:
    """Opens stores of one kind on the same data, as separate gateways would."""

    open: Callable[[StoreLimits], JobStore]
    opened: list[JobStore]

    def new(self, limits: StoreLimits | None = None) -> JobStore:
        store = self.open(limits or StoreLimits(lease_s=0.3))
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", "redis"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
) -> AsyncIterator[Stores]:
    if request.param == "sqlite":

        def open_store(limits: StoreLimits) -> JobStore:
            return SqliteJobStore(tmp_path / "jobs", limits)
    else:
        url: str = request.getfixturevalue("redis_server")

        def open_store(limits: StoreLimits) -> JobStore:
            return RedisJobStore.from_url(
                url, limits, consumer=uuid.uuid4().hex, prefix=redis_prefix
            )

    made = Stores(open=open_store, opened=[])
    yield made
    for store in made.opened:
        await store.close()


def _job(caller: str = "alice", request_id: str = "", created: float | None = None) -> JobRecord:
    now = time.time() if created is None else created
    return JobRecord(
        id=uuid.uuid4().hex,
        caller=caller,
        request_id=request_id,
        request=b"request",
        metadata=b"",
        created=now,
        updated=now,
    )


def _event(index: int, image: bytes = b"") -> bytes:
    if image:
        return gateway_pb2.GenerateResponse(
            result=common_pb2.VariantResult(index=index, image=common_pb2.Image(data=image))
        ).SerializeToString()
    return gateway_pb2.GenerateResponse(
        progress=common_pb2.RenderProgress(variant=0, step=index, total_steps=9)
    ).SerializeToString()


async def _all(events: AsyncIterator[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    return [item async for item in events]


async def _finish(store: JobStore, job_id: str) -> None:
    await store.finish(job_id, state=SUCCEEDED, metadata=b"m", error=b"")


async def test_a_submitted_job_is_stored_and_taken_by_exactly_one_runner(stores: Stores) -> None:
    first, second = stores.new(), stores.new()
    job = await first.submit(_job())
    assert (await second.get(job.id)) == job
    taken = await asyncio.gather(first.take(wait_s=0.3), second.take(wait_s=0.3))
    assert [t.id for t in taken if t is not None] == [job.id]


async def test_the_same_request_id_of_the_same_caller_returns_the_stored_job(
    stores: Stores,
) -> None:
    store = stores.new()
    job = await store.submit(_job(request_id="k"))
    assert (await store.submit(_job(request_id="k"))).id == job.id
    assert (await store.submit(_job(caller="bob", request_id="k"))).id != job.id
    assert (await store.submit(_job())).id != job.id


async def test_events_replay_from_an_index_then_follow_until_the_job_finishes(
    stores: Stores,
) -> None:
    store = stores.new()
    job = await store.submit(_job())
    for index in (1, 2, 3):
        await store.append(job.id, index, _event(index), b"m", state=RUNNING)
    follow = asyncio.create_task(_all(store.events(job.id, after=1)))
    await asyncio.sleep(0.2)
    assert not follow.done(), "a running job's events are followed, not ended"
    await store.append(job.id, 4, _event(4, image=b"png bytes"), b"m", state=RUNNING)
    await _finish(store, job.id)
    events = await asyncio.wait_for(follow, 5)
    assert [i for i, _ in events] == [2, 3, 4]
    assert events[-1][1] == _event(4, image=b"png bytes"), "images come back with their event"
    assert await _all(store.events(job.id, after=4)) == []
    stored = await store.get(job.id)
    assert stored is not None and stored.done and stored.size > 0


async def test_events_of_an_unknown_job_end_at_once(stores: Stores) -> None:
    assert await _all(stores.new().events(uuid.uuid4().hex, after=0)) == []


async def test_a_job_whose_runner_is_gone_is_taken_again(stores: Stores) -> None:
    first = stores.new()
    job = await first.submit(_job())
    assert (await first.take(wait_s=0.5)) is not None
    await first.close()
    stores.opened.remove(first)
    # Another gateway (Redis: after the lease) or this one restarted (SQLite) takes it.
    second = stores.new()
    again = None
    deadline = time.monotonic() + 5
    while again is None and time.monotonic() < deadline:
        again = await second.take(wait_s=0.2)
    assert again is not None and again.id == job.id


async def test_a_renewed_job_is_not_taken_over(stores: Stores) -> None:
    first, second = stores.new(), stores.new()
    for store in (first, second):  # both gateways are up before the job is taken
        assert await store.get(uuid.uuid4().hex) is None
    job = await first.submit(_job())
    assert await first.take(wait_s=0.5) is not None
    for _ in range(6):
        await first.keep(job.id)
        assert await second.take(wait_s=0.1) is None
    await _finish(first, job.id)
    assert await second.take(wait_s=0.2) is None, "a finished job is never taken"


async def test_cancel_is_a_flag_any_store_sees(stores: Stores) -> None:
    first, second = stores.new(), stores.new()
    job = await first.submit(_job())
    assert not await first.cancel_requested(job.id)
    await second.request_cancel(job.id)
    assert await first.cancel_requested(job.id)
    seen = await first.get(job.id)
    assert seen is not None and seen.cancel_requested
    assert await first.cancel_requested(uuid.uuid4().hex), "a job that is gone stops too"


async def test_list_pages_a_callers_jobs_newest_first_and_filters_by_state(
    stores: Stores,
) -> None:
    store = stores.new()
    ids = [(await store.submit(_job(created=1000.0 + i))).id for i in range(5)]
    await store.submit(_job(caller="bob"))
    await _finish(store, ids[1])
    page = await store.list_jobs("alice", states=frozenset(), page_size=2, page_token="")
    seen = [j.id for j in page.jobs]
    while page.next_token:
        page = await store.list_jobs(
            "alice", states=frozenset(), page_size=2, page_token=page.next_token
        )
        seen += [j.id for j in page.jobs]
    assert seen == ids[::-1]
    done = await store.list_jobs("alice", states=frozenset({SUCCEEDED}), page_size=9, page_token="")
    assert [j.id for j in done.jobs] == [ids[1]]
    with pytest.raises(ValueError, match="page token"):
        await store.list_jobs("alice", states=frozenset(), page_size=2, page_token="junk!")


async def test_finished_jobs_expire_after_the_retention_time(stores: Stores) -> None:
    store = stores.new(StoreLimits(retention_s=1.0))
    done, running = await store.submit(_job(request_id="k")), await store.submit(_job())
    await store.append(done.id, 1, _event(1, image=b"img"), b"m", state=RUNNING)
    await _finish(store, done.id)
    await asyncio.sleep(1.3)
    await store.purge()
    assert await store.get(done.id) is None
    assert await _all(store.events(done.id, after=0)) == []
    assert await store.get(running.id) is not None, "an unfinished job never expires"
    assert (await store.submit(_job(request_id="k"))).id != done.id


async def test_the_byte_budget_removes_the_oldest_finished_jobs(stores: Stores) -> None:
    store = stores.new(StoreLimits(retention_bytes=100))
    jobs = [await store.submit(_job()) for _ in range(3)]
    for job in jobs:
        await store.append(job.id, 1, _event(1, image=b"x" * 60), b"m", state=RUNNING)
        await _finish(store, job.id)
        await asyncio.sleep(0.01)
    assert await store.purge() == 2
    assert [await store.get(job.id) is None for job in jobs] == [True, True, False]


async def test_delete_removes_the_job_its_events_and_its_request_id(stores: Stores) -> None:
    store = stores.new()
    job = await store.submit(_job(request_id="k"))
    await store.append(job.id, 1, _event(1, image=b"img"), b"m", state=RUNNING)
    await _finish(store, job.id)
    await store.delete(job.id)
    assert await store.get(job.id) is None
    assert await _all(store.events(job.id, after=0)) == []
    assert (await store.submit(_job(request_id="k"))).id != job.id


async def test_a_redis_runner_leaves_the_consumer_group_unless_it_holds_jobs(
    redis_server: str, redis_prefix: str
) -> None:
    import redis.asyncio as aioredis

    limits = StoreLimits(lease_s=30.0)
    idle = RedisJobStore.from_url(redis_server, limits, consumer="idle", prefix=redis_prefix)
    busy = RedisJobStore.from_url(redis_server, limits, consumer="busy", prefix=redis_prefix)
    await idle.submit(_job())
    assert await busy.take(wait_s=0.5) is not None
    assert await idle.take(wait_s=0.1) is None
    await idle.close()
    await busy.close()
    client = aioredis.Redis.from_url(redis_server)
    try:
        consumers = await client.xinfo_consumers(f"{redis_prefix}:queue", "runners")
    finally:
        await client.aclose()
    assert [c["name"] for c in consumers] == [b"busy"], "its job waits there for a takeover"
