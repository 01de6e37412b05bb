"""Assembly of the gateway's jobs: store, webhooks, runner, the Operations servicer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid

from google.longrunning import operations_pb2_grpc

from gateway.operations.lifecycle import JobOperations
from gateway.operations.runner import JobRunner
from gateway.operations.servicer import JobRpcs, OperationsServicer
from gateway.operations.settings import JobsSettings
from gateway.operations.sqlite_store import SqliteJobStore
from gateway.operations.store import JobStore, StoreLimits
from gateway.operations.webhooks import WebhookPolicy, WebhookSender
from gateway.orchestrator import Orchestrator
from gateway.validation import RequestLimits
from services.common.logs import get_logger
from services.common.server import GrpcServer

__all__ = ["install_jobs", "open_store"]

_log = get_logger(__name__)


def open_store(settings: JobsSettings) -> JobStore:
    """The configured job store.

    Args:
        settings: The jobs' settings.

    Returns:
        A SQLite store in ``jobs_dir``, or a Redis store on ``jobs_redis_url`` whose
        consumer name is unique to this process.
    """
    limits = StoreLimits(
        retention_s=settings.jobs_retention_s,
        retention_bytes=settings.jobs_retention_bytes,
        lease_s=settings.jobs_lease_s,
    )
    if settings.jobs_store == "redis":
        # Imported here: only a gateway keeping its jobs in Redis loads the client.
        from gateway.operations.redis_store import RedisJobStore

        consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        return RedisJobStore.from_url(
            settings.jobs_redis_url, limits, consumer=consumer, prefix=settings.jobs_redis_prefix
        )
    return SqliteJobStore(settings.jobs_dir, limits)


def install_jobs(
    host: GrpcServer,
    settings: JobsSettings,
    orchestrator: Orchestrator,
    limits: RequestLimits,
) -> JobRpcs:
    """Adds jobs to the gateway: the Operations service on ``host``, and the runner,
    started now and stopped (before the store closes) when ``host`` stops.

    Args:
        host: The gateway's server, not started.
        settings: The jobs' settings.
        orchestrator: Runs the jobs, as it runs ``Generate``.
        limits: Request bounds, checked at submit.

    Returns:
        The job RPCs the gateway's servicer delegates ``SubmitGenerate`` and
        ``WatchOperation`` to.
    """
    store = open_store(settings)
    secret = settings.webhook_secret
    webhooks = WebhookSender(
        WebhookPolicy(
            secret=None if secret is None else secret.get_secret_value(),
            allow_list=settings.webhook_allow_list(),
            attempts=settings.webhook_attempts,
            backoff_s=settings.webhook_backoff_s,
            timeout_s=settings.webhook_timeout_s,
        )
    )
    operations = JobOperations(
        store, limits=limits, webhooks=webhooks, retention_s=settings.jobs_retention_s
    )
    runner = JobRunner(
        store,
        orchestrator,
        webhooks,
        workers=settings.jobs_workers,
        lease_s=settings.jobs_lease_s,
    )
    operations_pb2_grpc.add_OperationsServicer_to_server(
        OperationsServicer(operations), host.server
    )

    async def purge_forever() -> None:
        while True:
            try:
                removed = await store.purge()
                if removed:
                    _log.info("expired jobs removed", extra={"jobs": removed})
            except Exception:
                _log.exception("removing expired jobs failed")
            await asyncio.sleep(settings.jobs_purge_interval_s)

    # Started now (create_server runs in the server's loop); stopped after the server.
    runner.start()
    purger = asyncio.create_task(purge_forever(), name="job-purge")

    async def stop() -> None:
        purger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purger
        await runner.stop()
        await webhooks.close()
        await store.close()

    host.on_stop(stop)
    return JobRpcs(operations)
