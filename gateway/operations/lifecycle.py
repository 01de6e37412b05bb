"""A job's life as its caller sees it: submit, look up, list, watch, wait, cancel, delete.

The servicers translate these onto ``GatewayService.SubmitGenerate`` /
``WatchOperation`` and ``google.longrunning.Operations``. Every look-up is scoped to the
caller that submitted the job: another caller's job answers PERMISSION_DENIED (without
authentication every caller is the same anonymous caller).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator

from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import timestamp_pb2
from google.rpc import status_pb2

from gateway.auth import PermissionDeniedError
from gateway.limits import admit
from gateway.operations.progress import fold_response
from gateway.operations.store import FINISHED, JobRecord, JobStore
from gateway.operations.webhooks import WebhookSender
from gateway.orchestrator import RANDOM_SEED_BOUND
from gateway.validation import RequestLimits, validate_generate, validated
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import (
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
)

__all__ = ["MAX_PAGE_SIZE", "JobOperations", "parse_state_filter"]

MAX_PAGE_SIZE = 500
"""Largest page ListOperations returns; also the size of a page when none is asked."""
_DEFAULT_PAGE_SIZE = 50
_NAME = re.compile(r"operations/([0-9a-f]{32})")
_MAX_REQUEST_ID = 128
_STATES = {
    name.removeprefix("JOB_STATE_"): value
    for name, value in gateway_pb2.JobState.items()
    if value != gateway_pb2.JOB_STATE_UNSPECIFIED
}


def parse_state_filter(text: str) -> frozenset[int]:
    """The job states a ListOperations filter selects (empty = all).

    Accepts ``state = SUCCEEDED``, several joined by ``OR``, full enum names
    (``state = JOB_STATE_RUNNING``), and ``done = true`` / ``done = false``.

    Raises:
        InvalidArgumentError: Anything else.
    """
    states: set[int] = set()
    if not text.strip():
        return frozenset()
    for term in re.split(r"\s+OR\s+", text.strip()):
        key, _, value = (part.strip() for part in term.partition("="))
        value = value.strip("\"'").upper().removeprefix("JOB_STATE_")
        if key == "state" and value in _STATES:
            states.add(_STATES[value])
        elif key == "done" and value in ("TRUE", "FALSE"):
            unfinished = set(_STATES.values()) - FINISHED
            states |= FINISHED if value == "TRUE" else unfinished
        else:
            raise InvalidArgumentError(
                "unsupported filter",
                [
                    FieldViolation(
                        "filter",
                        f"{term!r}: use state = {'|'.join(_STATES)} (joined by OR) "
                        "or done = true|false",
                    )
                ],
            )
    return frozenset(states)


def _timestamp(seconds: float | None, into: timestamp_pb2.Timestamp) -> None:
    if seconds is not None:
        into.FromNanoseconds(round(seconds * 1e9))


class JobOperations:
    """Jobs as ``google.longrunning`` operations, scoped to their callers.

    Args:
        store: Where jobs live.
        limits: Request bounds, checked at submit so a bad request fails at once.
        webhooks: Checks a submit's webhook.
        retention_s: How long finished jobs are kept (named in NOT_FOUND messages).
    """

    def __init__(
        self,
        store: JobStore,
        *,
        limits: RequestLimits,
        webhooks: WebhookSender,
        retention_s: float,
    ) -> None:
        self._store = store
        self._limits = limits
        self._webhooks = webhooks
        self._retention_s = retention_s

    async def submit(
        self, request: gateway_pb2.SubmitGenerateRequest, *, caller: str
    ) -> operations_pb2.Operation:
        """Validates and stores a job (or finds the caller's earlier one with the same
        request id) and returns its operation.

        Raises:
            InvalidArgumentError: The generate request or the webhook is invalid.
            FailedPreconditionError: A webhook was asked for but none can be sent.
            ResourceExhaustedError: The caller is over its variants per minute.
        """
        if len(request.request_id) > _MAX_REQUEST_ID:
            raise InvalidArgumentError(
                "request_id too long",
                [FieldViolation("request_id", f"at most {_MAX_REQUEST_ID} characters")],
            )
        if request.HasField("webhook"):
            self._webhooks.check(request.webhook)
        try:
            job = await validated(validate_generate, request.generate, self._limits)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(
                e.message,
                [FieldViolation(f"generate.{v.field}", v.description) for v in e.violations],
            ) from e
        # Charged like a Generate of the same size, once the request is known valid: jobs
        # are no way around a caller's variants per minute.
        admit(job.variants)
        stored = gateway_pb2.SubmitGenerateRequest()
        stored.CopyFrom(request)
        # The seed is fixed now, so a re-run after a gateway failure renders the same images.
        seed = job.seed if job.seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)
        stored.generate.seed = seed
        now = time.time()
        metadata = gateway_pb2.SubmitGenerateMetadata(
            state=gateway_pb2.JOB_STATE_QUEUED,
            stage="queued",
            seed=seed,
            request_id=request.request_id,
        )
        _timestamp(now, metadata.create_time)
        record = await self._store.submit(
            JobRecord(
                id=uuid.uuid4().hex,
                caller=caller,
                request_id=request.request_id,
                request=stored.SerializeToString(),
                metadata=metadata.SerializeToString(),
                created=now,
                updated=now,
            )
        )
        return await self._operation(record)

    async def get(self, name: str, *, caller: str) -> operations_pb2.Operation:
        """The operation as it stands (with its response once it succeeded)."""
        return await self._operation(await self._job(name, caller))

    async def list_jobs(
        self, *, caller: str, filter_text: str, page_size: int, page_token: str
    ) -> operations_pb2.ListOperationsResponse:
        """The caller's operations, newest first, without their responses (Get those)."""
        states = parse_state_filter(filter_text)
        if page_size < 0:
            raise InvalidArgumentError(
                "negative page size", [FieldViolation("page_size", "must not be negative")]
            )
        size = min(page_size or _DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        try:
            page = await self._store.list_jobs(
                caller, states=states, page_size=size, page_token=page_token
            )
        except ValueError as e:
            raise InvalidArgumentError(str(e), [FieldViolation("page_token", str(e))]) from e
        response = operations_pb2.ListOperationsResponse(next_page_token=page.next_token)
        for job in page.jobs:
            response.operations.append(await self._operation(job, with_response=False))
        return response

    async def watch(
        self, name: str, *, after_event: int, caller: str
    ) -> AsyncIterator[gateway_pb2.GenerateResponse]:
        """The job's events after number ``after_event``, live until the job ends."""
        job = await self._job(name, caller)
        async for _, event in self._store.events(job.id, after=after_event):
            yield gateway_pb2.GenerateResponse.FromString(event)

    async def wait(self, name: str, *, timeout_s: float, caller: str) -> operations_pb2.Operation:
        """The operation once it is done, or as it stands after ``timeout_s``."""
        job = await self._job(name, caller)
        if not job.done:
            metadata = gateway_pb2.SubmitGenerateMetadata.FromString(job.metadata)
            try:
                async with asyncio.timeout(timeout_s):
                    async for _ in self._store.events(job.id, after=metadata.events):
                        pass
            except TimeoutError:
                pass
        return await self.get(name, caller=caller)

    async def cancel(self, name: str, *, caller: str) -> None:
        """Asks for the job to stop; returns at once (the operation ends CANCELLED soon).

        Raises:
            FailedPreconditionError: The job already finished.
        """
        job = await self._job(name, caller)
        if job.done:
            raise FailedPreconditionError(
                f"{name} already finished as {gateway_pb2.JobState.Name(job.state)}",
                reason="OPERATION_FINISHED",
            )
        await self._store.request_cancel(job.id)

    async def delete(self, name: str, *, caller: str) -> None:
        """Forgets a finished job: its record, events and images.

        Raises:
            FailedPreconditionError: The job still runs (cancel it first).
        """
        job = await self._job(name, caller)
        if not job.done:
            raise FailedPreconditionError(
                f"{name} is still running; cancel it first", reason="OPERATION_RUNNING"
            )
        await self._store.delete(job.id)

    async def _job(self, name: str, caller: str) -> JobRecord:
        match = _NAME.fullmatch(name)
        if match is None:
            raise InvalidArgumentError(
                "not an operation name",
                [FieldViolation("name", f"{name!r} is not operations/<32 hex digits>")],
            )
        job = await self._store.get(match.group(1))
        if job is None:
            hours = self._retention_s / 3600
            raise NotFoundError(
                f"{name} not found: it does not exist, was deleted, or finished more than "
                f"{hours:g} h ago and was removed after the retention period",
                reason="OPERATION_NOT_FOUND",
            )
        if job.caller != caller:
            raise PermissionDeniedError(
                f"{name} belongs to another caller", reason="NOT_THE_CALLERS_OPERATION"
            )
        return job

    async def _operation(
        self, job: JobRecord, *, with_response: bool = True
    ) -> operations_pb2.Operation:
        operation = operations_pb2.Operation(name=f"operations/{job.id}", done=job.done)
        metadata = gateway_pb2.SubmitGenerateMetadata.FromString(job.metadata)
        _timestamp(job.updated, metadata.update_time)
        _timestamp(job.finished, metadata.end_time)
        operation.metadata.Pack(metadata)
        if job.state == gateway_pb2.JOB_STATE_SUCCEEDED:
            if with_response:
                events = [
                    gateway_pb2.GenerateResponse.FromString(event)
                    async for _, event in self._store.events(job.id, after=0)
                ]
                operation.response.Pack(fold_response(events))
        elif job.done:
            operation.error.CopyFrom(status_pb2.Status.FromString(job.error))
        return operation
