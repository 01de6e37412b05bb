"""Retrying calls to flaky backends with exponential backoff, inside the caller's deadline.

Backends (Ollama, ComfyUI) drop connections while they load models; a few retries with
growing, jittered pauses ride that out. The caller's gRPC deadline bounds the whole
affair: no pause is started that would end after it::

    deadline = deadline_from_context(context)
    reply = await retry_async(
        lambda: client.chat(request, timeout=remaining(deadline, 60.0)),
        policy=RetryPolicy(max_attempts=4),
        retryable=lambda e: isinstance(e, httpx.TransportError),
        deadline=deadline,
    )
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc.aio

__all__ = ["RetryPolicy", "deadline_from_context", "remaining", "retry_async"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    | usage                                   | meaning                                  |
    |-----------------------------------------|------------------------------------------|
    | ``RetryPolicy()``                       | 3 attempts, pauses ≈0.2 s then ≈0.4 s     |
    | ``RetryPolicy(max_attempts=1)``         | no retry                                  |
    | ``RetryPolicy(jitter=0.0)``             | exact pauses (tests)                      |

    Attributes:
        max_attempts: Attempts in total, the first one included.
        initial_backoff_s: Pause before the second attempt.
        max_backoff_s: Cap of any single pause.
        multiplier: Growth of the pause after each failed attempt.
        jitter: Each pause is scaled by a random factor in ``[1 - jitter, 1 + jitter]`` so
            that replicas retrying together do not hit the backend in step.
    """

    max_attempts: int = 3
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within 0.0 and 1.0")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be non-negative and the multiplier at least 1")

    def backoff_s(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """The pause before retry number ``retry`` (1 for the first retry).

        Args:
            retry: Which retry, from 1.
            rand: Source of uniform numbers in [0, 1), injectable for tests.

        Returns:
            ``min(max_backoff_s, initial_backoff_s * multiplier**(retry-1))`` scaled by
            the jitter factor.
        """
        base = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        return base * (1.0 + self.jitter * (2.0 * rand() - 1.0))


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retryable: Callable[[BaseException], bool],
    deadline: float | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> T:
    """Awaits ``call()`` until it succeeds, retrying failures that ``retryable`` accepts.

    Args:
        call: Makes one attempt; called afresh for each.
        policy: Attempts and pauses.
        retryable: True for errors worth another attempt (a dropped connection), false
            for errors that will not change (a bad request).
        deadline: A ``time.monotonic()`` instant; no pause ends after it. ``None``: no bound.
        on_retry: Called before each pause with (attempt that failed, its error, pause).
        sleep: Pause function, injectable for tests.
        clock: Monotonic clock, injectable for tests.
        rand: Uniform random source for the jitter, injectable for tests.

    Returns:
        What the first successful attempt returned.

    Raises:
        BaseException: The last attempt's error when it is not retryable, when the
            attempts are used up, or when the next pause would pass the deadline.
            ``asyncio.CancelledError`` is never retried.
    """
    attempt = 1
    while True:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if attempt >= policy.max_attempts or not retryable(error):
                raise
            pause = policy.backoff_s(attempt, rand)
            if deadline is not None and clock() + pause >= deadline:
                raise
            if on_retry is not None:
                on_retry(attempt, error, pause)
        await sleep(pause)
        attempt += 1


def deadline_from_context(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    """The caller's gRPC deadline as a ``time.monotonic()`` instant.

    Args:
        context: The servicer context of the current call.

    Returns:
        ``None`` when the caller set no deadline (aio reports ``time_remaining()`` as
        ``None`` then), else now plus the time remaining.
    """
    left: float | None = context.time_remaining()
    if left is None:
        return None
    return time.monotonic() + left


def remaining(deadline: float | None, default: float) -> float:
    """Seconds left until ``deadline``, for a downstream call's ``timeout=``.

    Args:
        deadline: A ``time.monotonic()`` instant, or ``None`` for no deadline.
        default: The timeout to use when there is no deadline.

    Returns:
        ``deadline - now`` (never below zero), or ``default`` when ``deadline`` is
        ``None``. Take ``min(budget, remaining(...))`` to cap it with a local budget.
    """
    if deadline is None:
        return default
    return max(0.0, deadline - time.monotonic())
