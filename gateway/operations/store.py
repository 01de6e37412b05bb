"""The job store: a small interface with two implementations that pass the same contract tests.

| implementation | for | jobs taken by | events | expiry |
|---|---|---|---|---|
| ``SqliteJobStore`` | one gateway | that gateway | rows + image files | purge by time, bytes |
| ``RedisJobStore`` | replicas | a Streams consumer group | a stream per job | TTLs + byte budget |

A store keeps each job's record, its events in order (numbered from 1) and hands
queued jobs to runners: every job to exactly one runner at a time, and a job whose
runner stopped (a crash, a restart) to a runner again, so it resumes rather than vanishes.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import BackendUnavailableError

__all__ = [
    "FINISHED",
    "JobPage",
    "JobRecord",
    "JobStore",
    "JobStoreUnavailableError",
    "StoreLimits",
    "decode_page_token",
    "encode_page_token",
    "unavailable_on",
]

_P = ParamSpec("_P")
_S = TypeVar("_S")
_T = TypeVar("_T")

FINISHED = frozenset(
    {gateway_pb2.JOB_STATE_SUCCEEDED, gateway_pb2.JOB_STATE_FAILED, gateway_pb2.JOB_STATE_CANCELLED}
)
"""States a job never leaves."""


@dataclass
class JobRecord:
    """One job as stored.

    Attributes:
        id: The job id (the operation is ``operations/{id}``).
        caller: The caller that submitted it ("" without authentication).
        request_id: The caller's idempotency key; "" if none.
        request: The serialized ``SubmitGenerateRequest``, its seed fixed at submit.
        state: A ``JobState`` value.
        metadata: The serialized ``SubmitGenerateMetadata`` as last recorded.
        error: The serialized ``google.rpc.Status`` of a failed or cancelled job.
        created: Submit time, seconds since the epoch.
        updated: Last change, seconds since the epoch.
        finished: End time; None while it runs.
        size: Bytes its events take (counted against the retention budget).
        cancel_requested: A caller asked to cancel it.
    """

    id: str
    caller: str
    request_id: str
    request: bytes
    state: int = gateway_pb2.JOB_STATE_QUEUED
    metadata: bytes = b""
    error: bytes = b""
    created: float = 0.0
    updated: float = 0.0
    finished: float | None = None
    size: int = 0
    cancel_requested: bool = False

    @property
    def done(self) -> bool:
        """Whether the job has finished."""
        return self.state in FINISHED


@dataclass(frozen=True)
class StoreLimits:
    """How long and how much a store keeps.

    Attributes:
        retention_s: Seconds a finished job (record, events, images) is kept.
        retention_bytes: Most bytes of finished jobs' events kept; the oldest go first.
        lease_s: Seconds a runner may stay silent before another takes its job over.
    """

    retention_s: float = 86400.0
    retention_bytes: int = 2_000_000_000
    lease_s: float = 30.0


@dataclass
class JobPage:
    """One page of a caller's jobs, newest first.

    Attributes:
        jobs: The jobs on this page.
        next_token: Token of the next page; "" on the last.
    """

    jobs: list[JobRecord] = field(default_factory=list)
    next_token: str = ""


class JobStore(Protocol):
    """Where jobs, their events and their queue live."""

    async def submit(self, job: JobRecord) -> JobRecord:
        """Stores and queues a new job, unless its caller's request id is known.

        Returns:
            The stored job: ``job``, or the caller's earlier job with the same request id.
        """
        ...

    async def get(self, job_id: str) -> JobRecord | None:
        """The job, or None when it never existed or has expired."""
        ...

    async def list_jobs(
        self, caller: str, *, states: frozenset[int], page_size: int, page_token: str
    ) -> JobPage:
        """The caller's jobs in the given states (all when empty), newest first."""
        ...

    async def take(self, *, wait_s: float) -> JobRecord | None:
        """Takes a queued job, or one whose runner stopped, waiting up to ``wait_s``.

        Returns:
            A job only this runner now holds, or None when none came.
        """
        ...

    async def keep(self, job_id: str) -> None:
        """Renews this runner's hold on a job it runs (call well within the lease)."""
        ...

    async def append(
        self, job_id: str, index: int, event: bytes, metadata: bytes, *, state: int
    ) -> None:
        """Records event number ``index`` of a job with its metadata and state after it."""
        ...

    async def finish(self, job_id: str, *, state: int, metadata: bytes, error: bytes) -> None:
        """Marks a job finished and releases it; retention starts now."""
        ...

    def events(self, job_id: str, *, after: int) -> AsyncIterator[tuple[int, bytes]]:
        """A job's events numbered above ``after``: the recorded ones, then new ones as
        they come, ending when the job has finished and every event was delivered (or at
        once if the job does not exist)."""
        ...

    async def request_cancel(self, job_id: str) -> None:
        """Flags a job for cancellation; its runner (on any replica) stops it."""
        ...

    async def cancel_requested(self, job_id: str) -> bool:
        """Whether the job's cancel was asked for, or the job is gone."""
        ...

    async def delete(self, job_id: str) -> None:
        """Removes a job, its events and images."""
        ...

    async def purge(self) -> int:
        """Removes finished jobs past the retention time or over the byte budget.

        Returns:
            How many jobs were removed.
        """
        ...

    async def close(self) -> None:
        """Releases connections and files."""
        ...


def encode_page_token(position: int) -> str:
    """The opaque token of the page starting at ``position``."""
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode()


def decode_page_token(token: str) -> int:
    """The position a page token points at; 0 for ""."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if not text.startswith("p"):
            raise ValueError(token)
        return max(0, int(text[1:]))
    except ValueError as e:
        raise ValueError(f"not a page token of this gateway: {token!r}") from e


class JobStoreUnavailableError(BackendUnavailableError):
    """The job store (the SQLite file, Redis) failed a request: UNAVAILABLE.

    Args:
        store: Which store, e.g. ``"redis"``.
        cause: What it raised.
    """

    def __init__(self, store: str, cause: BaseException) -> None:
        super().__init__(
            f"the job store ({store}) is unavailable: {type(cause).__name__}: {cause}",
            backend=f"{store} job store",
        )


def unavailable_on(
    store: str, *errors: type[Exception]
) -> Callable[
    [Callable[Concatenate[_S, _P], Coroutine[Any, Any, _T]]],
    Callable[Concatenate[_S, _P], Coroutine[Any, Any, _T]],
]:
    """Decorates a store method so that ``errors`` surface as :class:`JobStoreUnavailableError`.

    Args:
        store: The store's name for the message.
        errors: The client library's failures (connection lost, database locked, ...).
    """

    def decorate(
        method: Callable[Concatenate[_S, _P], Coroutine[Any, Any, _T]],
    ) -> Callable[Concatenate[_S, _P], Coroutine[Any, Any, _T]]:
        @functools.wraps(method)
        async def guarded(instance: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
            try:
                return await method(instance, *args, **kwargs)
            except errors as e:
                raise JobStoreUnavailableError(store, e) from e

        return guarded

    return decorate
