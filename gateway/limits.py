"""Per-caller limits at the gateway: generations at once and variants per minute.

Each authenticated caller (a name from the token file, see :mod:`gateway.auth`) has its
own budget, so one busy caller cannot take every GPU slot from the others::

    limiter = CallerLimiter(CallerLimits(max_concurrent=2, variants_per_minute=32))
    with limiter.acquire("studio-web", variants=4):
        ...  # the generation runs; its slot is given back on leaving the block

A call is charged only once its request is known to be valid, so a refused request
costs its caller nothing: the auth interceptor opens a :class:`CallAdmission` for each
authenticated call, the pipeline calls :func:`admit` right after validation, before
any model is asked, and the interceptor gives the slot back when the call ends::

    job = validate_generate(request, limits)     # INVALID_ARGUMENT costs nothing
    admit(job.variants)                           # RESOURCE_EXHAUSTED, or charged

``Generate`` is charged its variants; ``Plan`` is charged as a generation of one
variant, since it runs both models as a ``Generate`` does.

A call over either limit is refused before any model work starts with
:class:`~services.common.errors.ResourceExhaustedError` (RESOURCE_EXHAUSTED with
``ErrorInfo`` and ``RetryInfo``), so a well-behaved client knows when to come back.

- **Concurrency** counts generations in flight; the slot is held until the call ends,
  however it ends. The retry delay sent is a hint (:data:`BUSY_RETRY_AFTER_S`): nobody
  knows when a running generation will finish.
- **Variants per minute** is a token bucket: it holds up to ``variants_per_minute``
  variants and refills continuously at ``variants_per_minute / 60`` per second, so a
  caller may burst up to the whole minute's allowance at once. The retry delay sent is
  exactly when enough variants will have refilled. Variants are counted when the call
  is admitted and not given back if it later fails: a failed render used the GPU too.
  A single call asking for more variants than the whole allowance can never pass; it is
  refused without ``RetryInfo``.

Limits of 0 mean "no limit". The clock is injectable so tests move time by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType

from services.common.errors import ResourceExhaustedError

__all__ = [
    "BUSY_RETRY_AFTER_S",
    "REASON_CONCURRENCY",
    "REASON_VARIANTS_OVER_ALLOWANCE",
    "REASON_VARIANT_RATE",
    "CallAdmission",
    "CallerLimiter",
    "CallerLimits",
    "Lease",
    "admit",
    "current_admission",
]

BUSY_RETRY_AFTER_S = 5.0
"""Retry delay suggested to a caller at its concurrency limit (a render takes longer)."""

REASON_CONCURRENCY = "CALLER_CONCURRENCY_LIMIT"
"""``ErrorInfo.reason`` when the caller already runs its most generations at once."""
REASON_VARIANT_RATE = "CALLER_VARIANT_RATE_LIMIT"
"""``ErrorInfo.reason`` when the caller's variants per minute are spent for now."""
REASON_VARIANTS_OVER_ALLOWANCE = "CALLER_VARIANTS_OVER_ALLOWANCE"
"""``ErrorInfo.reason`` when one call asks for more variants than a whole minute allows."""


@dataclass(frozen=True)
class CallerLimits:
    """The budget of one caller.

    Attributes:
        max_concurrent: Most generations the caller may run at once; 0 = no limit.
        variants_per_minute: Most variants the caller may start per minute (a token
            bucket of that size refilled over a minute); 0 = no limit.
    """

    max_concurrent: int = 0
    variants_per_minute: int = 0

    def __post_init__(self) -> None:
        if self.max_concurrent < 0 or self.variants_per_minute < 0:
            raise ValueError("limits must be 0 (no limit) or positive")


class Lease:
    """One admitted generation; releasing it frees the caller's concurrency slot.

    Use it as a context manager, or call :meth:`release` (idempotent) yourself.
    """

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        """Gives the slot back; later calls do nothing."""
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@dataclass
class _Bucket:
    tokens: float
    updated: float


class CallerLimiter:
    """Admits or refuses generations per caller (see the module doc).

    Not thread-safe: it is used from the gateway's event loop only, and
    :meth:`acquire` never awaits, so two calls cannot interleave inside it.

    Args:
        defaults: Limits of a caller that has none of its own.
        clock: Monotonic seconds; injectable for tests.
        busy_retry_after_s: Retry delay suggested at the concurrency limit.
    """

    def __init__(
        self,
        defaults: CallerLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        busy_retry_after_s: float = BUSY_RETRY_AFTER_S,
    ) -> None:
        self.defaults = defaults
        self._clock = clock
        self._busy_retry_after_s = busy_retry_after_s
        self._in_flight: dict[str, int] = {}
        self._buckets: dict[str, _Bucket] = {}

    def in_flight(self, caller: str) -> int:
        """Generations of ``caller`` running now."""
        return self._in_flight.get(caller, 0)

    def acquire(self, caller: str, *, variants: int, limits: CallerLimits | None = None) -> Lease:
        """Admits one generation of ``variants`` variants for ``caller``, or refuses it.

        Nothing is counted when the call is refused.

        Args:
            caller: The authenticated caller's name.
            variants: Variants the call will render (at least 1 is counted).
            limits: The caller's own limits; ``None`` takes the defaults.

        Returns:
            The lease holding the caller's concurrency slot until released.

        Raises:
            ResourceExhaustedError: Over a limit; ``retry_after_s`` says when to retry
                (``None`` when retrying the same call can never succeed).
        """
        limits = limits or self.defaults
        variants = max(1, variants)
        metadata = {"caller": caller}
        running = self.in_flight(caller)
        if limits.max_concurrent and running >= limits.max_concurrent:
            raise ResourceExhaustedError(
                f"caller {caller!r} already runs {running} generations "
                f"(limit {limits.max_concurrent}); retry when one has finished",
                retry_after_s=self._busy_retry_after_s,
                reason=REASON_CONCURRENCY,
                metadata={**metadata, "limit": str(limits.max_concurrent)},
            )
        if limits.variants_per_minute:
            self._take_variants(caller, variants, limits.variants_per_minute, metadata)
        self._in_flight[caller] = running + 1
        return Lease(lambda: self._release(caller))

    def _take_variants(
        self, caller: str, variants: int, per_minute: int, metadata: dict[str, str]
    ) -> None:
        metadata = {**metadata, "limit": str(per_minute)}
        if variants > per_minute:
            raise ResourceExhaustedError(
                f"{variants} variants in one call exceed caller {caller!r}'s allowance of "
                f"{per_minute} per minute; ask for fewer",
                reason=REASON_VARIANTS_OVER_ALLOWANCE,
                metadata=metadata,
            )
        now = self._clock()
        rate = per_minute / 60.0
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _Bucket(tokens=float(per_minute), updated=now)
        # The allowance may have shrunk since the last call (the token file changed).
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < variants:
            wait_s = (variants - bucket.tokens) / rate
            raise ResourceExhaustedError(
                f"caller {caller!r} has started its {per_minute} variants per minute; "
                f"{variants} more fit in {math.ceil(wait_s)} s",
                retry_after_s=wait_s,
                reason=REASON_VARIANT_RATE,
                metadata=metadata,
            )
        bucket.tokens -= variants

    def _release(self, caller: str) -> None:
        left = self._in_flight.get(caller, 0) - 1
        if left > 0:
            self._in_flight[caller] = left
        else:
            self._in_flight.pop(caller, None)


class CallAdmission:
    """The limits of one call, charged once its request is known to be valid.

    Args:
        limiter: The gateway's limiter.
        caller: The authenticated caller's name.
        limits: The caller's own limits; ``None`` takes the limiter's defaults.
    """

    def __init__(self, limiter: CallerLimiter, caller: str, limits: CallerLimits | None) -> None:
        self._limiter = limiter
        self._caller = caller
        self._limits = limits
        self._lease: Lease | None = None

    def charge(self, variants: int) -> None:
        """Admits the call's generation of ``variants`` variants, or refuses it.

        Raises:
            ResourceExhaustedError: Over a limit (see :meth:`CallerLimiter.acquire`).
            RuntimeError: The call was charged already.
        """
        if self._lease is not None:
            raise RuntimeError("a call is charged once")
        self._lease = self._limiter.acquire(self._caller, variants=variants, limits=self._limits)

    def release(self) -> None:
        """Gives the call's slot back, if it was charged; later calls do nothing."""
        if self._lease is not None:
            self._lease.release()


current_admission: ContextVar[CallAdmission | None] = ContextVar("current_admission", default=None)
"""The admission of the call being handled; ``None`` when calls are not limited."""


def admit(variants: int) -> None:
    """Charges the current call's caller for a valid request of ``variants`` variants.

    Does nothing when the call is not limited (no token file is configured).

    Args:
        variants: Variants the call will render; a ``Plan`` counts as 1.

    Raises:
        ResourceExhaustedError: The caller is over a limit; nothing was charged.
    """
    admission = current_admission.get()
    if admission is not None:
        admission.charge(variants)
