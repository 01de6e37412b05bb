"""The gRPC side of jobs: ``google.longrunning.Operations`` and the gateway's job RPCs.

Thin translations onto :class:`~gateway.operations.lifecycle.JobOperations`; errors are
raised as :class:`~services.common.errors.ImagegenError` and turned into statuses by the
shared server interceptor.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import grpc.aio
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import empty_pb2

from gateway.auth import current_caller
from gateway.operations.lifecycle import JobOperations
from imagegen.gateway.v1 import gateway_pb2

__all__ = ["OPERATIONS_SERVICE", "JobRpcs", "OperationsServicer", "caller_name"]

OPERATIONS_SERVICE = operations_pb2.DESCRIPTOR.services_by_name["Operations"].full_name
"""``google.longrunning.Operations``."""

DEFAULT_WAIT_S = 60.0
"""How long WaitOperation waits when the caller gives no timeout (and at most)."""


def caller_name() -> str:
    """The authenticated caller of the current call; "" without authentication."""
    caller = current_caller.get()
    return "" if caller is None else caller.name


class OperationsServicer(operations_pb2_grpc.OperationsServicer):  # type: ignore[misc]
    """Serves ``google.longrunning.Operations`` for the gateway's jobs.

    Args:
        operations: The jobs.
    """

    def __init__(self, operations: JobOperations) -> None:
        self._operations = operations

    async def GetOperation(  # gRPC method name
        self,
        request: operations_pb2.GetOperationRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> operations_pb2.Operation:
        """The operation, with its response once done."""
        return await self._operations.get(request.name, caller=caller_name())

    async def ListOperations(  # gRPC method name
        self,
        request: operations_pb2.ListOperationsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> operations_pb2.ListOperationsResponse:
        """The caller's operations, newest first, filtered by state."""
        return await self._operations.list_jobs(
            caller=caller_name(),
            filter_text=request.filter,
            page_size=request.page_size,
            page_token=request.page_token,
        )

    async def CancelOperation(  # gRPC method name
        self,
        request: operations_pb2.CancelOperationRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> empty_pb2.Empty:
        """Asks the job to stop."""
        await self._operations.cancel(request.name, caller=caller_name())
        return empty_pb2.Empty()

    async def DeleteOperation(  # gRPC method name
        self,
        request: operations_pb2.DeleteOperationRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> empty_pb2.Empty:
        """Forgets a finished job."""
        await self._operations.delete(request.name, caller=caller_name())
        return empty_pb2.Empty()

    async def WaitOperation(  # gRPC method name
        self,
        request: operations_pb2.WaitOperationRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> operations_pb2.Operation:
        """The operation once done, or as it stands after the timeout."""
        timeout_s = DEFAULT_WAIT_S
        if request.HasField("timeout"):
            timeout_s = min(request.timeout.ToNanoseconds() / 1e9, DEFAULT_WAIT_S)
        remaining = context.time_remaining()
        if remaining is not None:
            timeout_s = min(timeout_s, max(0.0, remaining - 0.1))
        return await self._operations.wait(request.name, timeout_s=timeout_s, caller=caller_name())


class JobRpcs:
    """The job methods of ``GatewayService`` (the gateway's servicer delegates to these).

    Args:
        operations: The jobs.
    """

    def __init__(self, operations: JobOperations) -> None:
        self._operations = operations

    async def submit_generate(
        self, request: gateway_pb2.SubmitGenerateRequest
    ) -> operations_pb2.Operation:
        """``SubmitGenerate``: the new (or the caller's earlier) operation."""
        return await self._operations.submit(request, caller=caller_name())

    async def watch_operation(
        self, request: gateway_pb2.WatchOperationRequest
    ) -> AsyncGenerator[gateway_pb2.GenerateResponse, None]:
        """``WatchOperation``: the job's events after ``after_event``."""
        async for event in self._operations.watch(
            request.name, after_event=request.after_event, caller=caller_name()
        ):
            yield event
