"""Retries back off exponentially with bounded jitter and never outlive the deadline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from imagegen.vision.v1 import vision_pb2
from services.common.retry import RetryPolicy, deadline_from_context, remaining, retry_async
from tests.common.conftest import ProbeVision, ServeFactory, open_channel, vision_stub


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """A call that raises ``error`` ``times`` times, then returns "ok"."""

    def __init__(self, times: int, error: BaseException) -> None:
        self.times = times
        self.error = error
        self.attempts = 0

    async def __call__(self) -> str:
        self.attempts += 1
        if self.attempts <= self.times:
            raise self.error
        return "ok"


def always(e: BaseException) -> bool:
    return True


async def test_backoff_grows_by_the_multiplier_up_to_the_cap() -> None:
    fake = FakeTime()
    policy = RetryPolicy(
        max_attempts=6, initial_backoff_s=0.1, max_backoff_s=0.5, multiplier=2.0, jitter=0.0
    )
    result = await retry_async(
        Flaky(5, ConnectionError()),
        policy=policy,
        retryable=always,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert result == "ok"
    assert fake.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999999])
def test_jitter_stays_within_its_bound(rand: float) -> None:
    policy = RetryPolicy(initial_backoff_s=1.0, jitter=0.2)
    pause = policy.backoff_s(1, rand=lambda: rand)
    assert 0.8 <= pause <= 1.2


def test_jitter_spreads_pauses() -> None:
    policy = RetryPolicy(initial_backoff_s=1.0, jitter=0.2)
    assert policy.backoff_s(1, rand=lambda: 0.0) != policy.backoff_s(1, rand=lambda: 0.99)


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    fake = FakeTime()
    call = Flaky(10, ConnectionError("down"))
    with pytest.raises(ConnectionError, match="down"):
        await retry_async(
            call,
            policy=RetryPolicy(max_attempts=3, jitter=0.0),
            retryable=always,
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert call.attempts == 3


async def test_stops_at_the_deadline_without_sleeping_past_it() -> None:
    fake = FakeTime()
    deadline = fake.now + 0.5
    call = Flaky(10, ConnectionError("down"))
    with pytest.raises(ConnectionError):
        await retry_async(
            call,
            policy=RetryPolicy(max_attempts=10, initial_backoff_s=0.2, jitter=0.0),
            retryable=always,
            deadline=deadline,
            sleep=fake.sleep,
            clock=fake.clock,
        )
    # Slept 0.2 (to 1000.2); the next pause, 0.4, would end after the deadline.
    assert fake.sleeps == pytest.approx([0.2])
    assert fake.now <= deadline


async def test_non_retryable_error_is_raised_at_once() -> None:
    fake = FakeTime()
    call = Flaky(1, ValueError("bad request"))
    with pytest.raises(ValueError):
        await retry_async(
            call,
            policy=RetryPolicy(),
            retryable=lambda e: isinstance(e, ConnectionError),
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert (call.attempts, fake.sleeps) == (1, [])


async def test_cancelled_error_is_never_retried() -> None:
    fake = FakeTime()
    call = Flaky(1, asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await retry_async(
            call, policy=RetryPolicy(), retryable=always, sleep=fake.sleep, clock=fake.clock
        )
    assert call.attempts == 1


async def test_on_retry_hears_each_failed_attempt_and_its_pause() -> None:
    fake = FakeTime()
    heard: list[tuple[int, str, float]] = []
    await retry_async(
        Flaky(2, ConnectionError("blip")),
        policy=RetryPolicy(initial_backoff_s=0.1, jitter=0.0),
        retryable=always,
        on_retry=lambda n, e, pause: heard.append((n, str(e), pause)),
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert [(n, text) for n, text, _ in heard] == [(1, "blip"), (2, "blip")]
    assert [pause for _, _, pause in heard] == pytest.approx([0.1, 0.2])


def test_remaining_is_the_default_without_deadline_and_time_left_with_one() -> None:
    assert remaining(None, 30.0) == 30.0
    left = remaining(time.monotonic() + 5.0, 30.0)
    assert 0.0 < left <= 5.0
    assert remaining(time.monotonic() - 1.0, 30.0) == 0.0


@pytest.mark.parametrize(
    "bad", [{"max_attempts": 0}, {"jitter": 1.5}, {"multiplier": 0.5}, {"initial_backoff_s": -1}]
)
def test_policy_refuses_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


async def test_deadline_from_context_follows_the_callers_timeout(serve: ServeFactory) -> None:
    seen: list[float | None] = []

    async def record(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
        deadline = deadline_from_context(context)
        seen.append(None if deadline is None else deadline - time.monotonic())
        return vision_pb2.AnalyzeImageResponse()

    async with serve(ProbeVision(record)) as server, open_channel(server) as channel:
        stub = vision_stub(channel)
        await stub.AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=30)
        await stub.AnalyzeImage(vision_pb2.AnalyzeImageRequest())
    with_timeout, without = seen
    # The deadline crosses the wire as a rounded relative timeout: allow some slack.
    assert with_timeout is not None and 0 < with_timeout <= 31
    assert without is None
