"""The per-caller limiter on its own, with a clock moved by hand."""

from __future__ import annotations

import pytest

from gateway.limits import (
    REASON_CONCURRENCY,
    REASON_VARIANT_RATE,
    REASON_VARIANTS_OVER_ALLOWANCE,
    CallerLimiter,
    CallerLimits,
)
from services.common.errors import ResourceExhaustedError


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_zero_limits_admit_everything() -> None:
    limiter = CallerLimiter(CallerLimits())
    leases = [limiter.acquire("a", variants=64) for _ in range(10)]
    assert limiter.in_flight("a") == 10
    for lease in leases:
        lease.release()
    assert limiter.in_flight("a") == 0


def test_a_refused_call_counts_nothing() -> None:
    limiter = CallerLimiter(CallerLimits(max_concurrent=5, variants_per_minute=4), clock=Clock())
    limiter.acquire("a", variants=3)
    with pytest.raises(ResourceExhaustedError):
        limiter.acquire("a", variants=2)
    assert limiter.in_flight("a") == 1
    limiter.acquire("a", variants=1)  # the refused call took no variants


def test_the_concurrency_limit_is_per_caller() -> None:
    limiter = CallerLimiter(CallerLimits(max_concurrent=1))
    limiter.acquire("a", variants=1)
    limiter.acquire("b", variants=1)
    with pytest.raises(ResourceExhaustedError) as caught:
        limiter.acquire("a", variants=1)
    assert caught.value.reason == REASON_CONCURRENCY
    assert caught.value.retry_after_s is not None


def test_releasing_a_lease_twice_frees_one_slot() -> None:
    limiter = CallerLimiter(CallerLimits(max_concurrent=2))
    first = limiter.acquire("a", variants=1)
    limiter.acquire("a", variants=1)
    first.release()
    first.release()
    assert limiter.in_flight("a") == 1


def test_variants_refill_continuously_over_the_minute() -> None:
    clock = Clock()
    limiter = CallerLimiter(CallerLimits(variants_per_minute=60), clock=clock)
    limiter.acquire("a", variants=60).release()
    clock.now += 10.0
    limiter.acquire("a", variants=10).release()
    with pytest.raises(ResourceExhaustedError) as caught:
        limiter.acquire("a", variants=1)
    assert caught.value.reason == REASON_VARIANT_RATE
    assert caught.value.retry_after_s == pytest.approx(1.0)


def test_more_variants_than_a_minute_allows_are_refused_without_retry_info() -> None:
    limiter = CallerLimiter(CallerLimits(variants_per_minute=4), clock=Clock())
    with pytest.raises(ResourceExhaustedError) as caught:
        limiter.acquire("a", variants=5)
    assert caught.value.reason == REASON_VARIANTS_OVER_ALLOWANCE
    assert caught.value.retry_after_s is None


def test_a_callers_own_limits_override_the_defaults() -> None:
    limiter = CallerLimiter(CallerLimits(max_concurrent=1))
    limiter.acquire("a", variants=1, limits=CallerLimits(max_concurrent=2))
    limiter.acquire("a", variants=1, limits=CallerLimits(max_concurrent=2))
    assert limiter.in_flight("a") == 2


def test_negative_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        CallerLimits(max_concurrent=-1)
