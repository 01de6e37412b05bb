"""Running jobs: the same orchestrator as ``Generate``, its events recorded instead of streamed.

Each gateway runs a few workers. A worker takes a job from the store, runs
:meth:`~gateway.orchestrator.Orchestrator.generate` on the job's request (seed fixed at
submit) and records every event with the metadata after it; a job's result is therefore
exactly what ``Generate`` of the same request streams. While the job runs the worker
renews its hold on it and watches for a cancel; a cancel cancels the orchestrator's task,
which cancels the render call, and the render service withdraws the job's ComfyUI prompts.

A job whose earlier attempt was cut off (its gateway stopped or died) is re-run from the
start with a ``JOB_RESTARTED`` warning; its earlier events stay in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from google.rpc import status_pb2

from gateway.operations.progress import JobProgress
from gateway.operations.store import JobRecord, JobStore
from gateway.operations.webhooks import WebhookSender
from gateway.orchestrator import Orchestrator
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import ImagegenError, to_rpc_status
from services.common.logs import get_logger, request_id_var

__all__ = ["JobRunner", "error_status"]

_log = get_logger(__name__)
_DETAILS_KEY = "grpc-status-details-bin"


def error_status(error: BaseException) -> status_pb2.Status:
    """The ``google.rpc.Status`` a failed job reports: the same code, message and details
    ``Generate`` would have ended with."""
    if isinstance(error, ImagegenError):
        for key, value in to_rpc_status(error).trailing_metadata:
            if key == _DETAILS_KEY:
                return status_pb2.Status.FromString(value)
    return status_pb2.Status(code=13, message=f"internal error: {type(error).__name__}")


def cancelled_status() -> status_pb2.Status:
    """The status of a job its caller cancelled (CANCELLED, as in AIP-151)."""
    return status_pb2.Status(code=1, message="the job was cancelled by its caller")


class JobRunner:
    """Workers that take jobs from the store and run them.

    Args:
        store: Where jobs come from and their events go.
        orchestrator: Runs the pipeline, as for ``Generate``.
        webhooks: Announces the jobs' ends.
        workers: Jobs this gateway runs at once.
        lease_s: The store's lease; the hold on a running job is renewed at a third of it.
        cancel_poll_s: Seconds between two looks for a cancel request.
        idle_wait_s: Longest one wait for a job to arrive.
    """

    def __init__(
        self,
        store: JobStore,
        orchestrator: Orchestrator,
        webhooks: WebhookSender,
        *,
        workers: int,
        lease_s: float,
        cancel_poll_s: float = 0.2,
        idle_wait_s: float = 1.0,
    ) -> None:
        self._store = store
        self._orchestrator = orchestrator
        self._webhooks = webhooks
        self._workers = workers
        self._lease_s = lease_s
        self._cancel_poll_s = cancel_poll_s
        self._idle_wait_s = idle_wait_s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Starts the workers."""
        self._tasks = [
            asyncio.create_task(self._work(), name=f"job-worker-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        """Stops the workers. Jobs they were running stay unfinished in the store, to be
        re-run after the lease (Redis) or at the next start (SQLite)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _work(self) -> None:
        while True:
            try:
                job = await self._store.take(wait_s=self._idle_wait_s)
                if job is not None:
                    await self.run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A store outage must not end the worker; it tries again shortly.
                _log.exception("job worker failed")
                await asyncio.sleep(self._idle_wait_s)

    async def run(self, job: JobRecord) -> None:
        """Runs one taken job to its end and records the outcome.

        Args:
            job: A job this worker holds.
        """
        submitted = gateway_pb2.SubmitGenerateRequest.FromString(job.request)
        progress = JobProgress(gateway_pb2.SubmitGenerateMetadata.FromString(job.metadata))
        name = f"operations/{job.id}"
        if job.cancel_requested:
            await self._finish(job, submitted, progress, cancelled=True, error=None)
            return
        attempt = progress.start_attempt()
        _log.info("job started", extra={"job": name, "attempt": attempt})
        if attempt > 1:
            restarted = gateway_pb2.GenerateResponse(
                warning={
                    "code": "JOB_RESTARTED",
                    "message": (
                        f"attempt {attempt}: the gateway running this job stopped; it is run "
                        "again from the start with the same seed"
                    ),
                }
            )
            await self._record(job.id, progress, restarted)

        generation = asyncio.create_task(self._generate(job, submitted, progress))
        watch = asyncio.create_task(self._watch(job.id))
        try:
            await asyncio.wait({generation, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled = watch.done() and not watch.cancelled() and watch.exception() is None
            for task in (generation, watch):
                task.cancel()
            outcome = await asyncio.gather(generation, watch, return_exceptions=True)
        error = outcome[0] if isinstance(outcome[0], Exception) else None
        await self._finish(job, submitted, progress, cancelled=cancelled, error=error)

    async def _generate(
        self,
        job: JobRecord,
        submitted: gateway_pb2.SubmitGenerateRequest,
        progress: JobProgress,
    ) -> None:
        request_id_var.set(job.id)
        events = self._orchestrator.generate(submitted.generate, time_remaining=None)
        async for event in events:
            await self._record(job.id, progress, event)

    async def _record(
        self, job_id: str, progress: JobProgress, event: gateway_pb2.GenerateResponse
    ) -> None:
        index = progress.record(event)
        await self._store.append(
            job_id,
            index,
            event.SerializeToString(),
            progress.metadata().SerializeToString(),
            state=gateway_pb2.JOB_STATE_RUNNING,
        )

    async def _watch(self, job_id: str) -> None:
        """Returns when the job's cancel is requested; renews the hold meanwhile."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self._cancel_poll_s)
            try:
                if await self._store.cancel_requested(job_id):
                    return
                if time.monotonic() - renewed >= self._lease_s / 3:
                    await self._store.keep(job_id)
                    renewed = time.monotonic()
            except Exception:
                # A store hiccup must neither cancel nor end the job: look again shortly.
                _log.exception("job watch failed", extra={"job": job_id})

    async def _finish(
        self,
        job: JobRecord,
        submitted: gateway_pb2.SubmitGenerateRequest,
        progress: JobProgress,
        *,
        cancelled: bool,
        error: BaseException | None,
    ) -> None:
        name = f"operations/{job.id}"
        status: status_pb2.Status | None = None
        if cancelled:
            state, status = gateway_pb2.JOB_STATE_CANCELLED, cancelled_status()
        elif error is not None:
            state, status = gateway_pb2.JOB_STATE_FAILED, error_status(error)
            if not isinstance(error, ImagegenError):
                _log.error("job failed", exc_info=error, extra={"job": name})
        else:
            state = gateway_pb2.JOB_STATE_SUCCEEDED
        progress.finish(state)
        await self._store.finish(
            job.id,
            state=state,
            metadata=progress.metadata().SerializeToString(),
            error=b"" if status is None else status.SerializeToString(),
        )
        _log.info(
            "job finished",
            extra={"job": name, "state": gateway_pb2.JobState.Name(state)},
        )
        self._webhooks.announce(
            submitted.webhook,
            name=name,
            state=state,
            request_id=job.request_id,
            error="" if status is None else status.message,
        )
