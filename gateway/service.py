"""The gateway's gRPC servicer: a thin translation onto :class:`~gateway.orchestrator.Orchestrator`.

Errors are raised as :class:`~services.common.errors.ImagegenError` and turned into
statuses with details by the shared server interceptor. A ``Generate`` is refused up
front while the render service is known to be down (:mod:`gateway.readiness`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc.aio
from google.longrunning import operations_proto_pb2

from gateway.capabilities import Capabilities
from gateway.operations.servicer import JobRpcs
from gateway.orchestrator import Orchestrator
from gateway.readiness import DownstreamReadiness
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.common.interceptors import REQUEST_ID_KEY
from services.common.logs import request_id_var

__all__ = ["SERVICE_NAME", "GatewayServicer"]

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name
"""``imagegen.gateway.v1.GatewayService``."""


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    """Serves ``imagegen.gateway.v1.GatewayService``.

    Args:
        orchestrator: Runs the pipeline.
        readiness: The downstream services' latest health; ``None`` refuses nothing.
        capabilities: What the system can do (``GetCapabilities``).
        jobs: Serves the job methods (SubmitGenerate, WatchOperation).
    """

    def __init__(
        self,
        orchestrator: Orchestrator,
        *,
        jobs: JobRpcs,
        readiness: DownstreamReadiness | None = None,
        capabilities: Capabilities,
    ) -> None:
        self._orchestrator = orchestrator
        self._readiness = readiness
        self._jobs = jobs
        self._capabilities = capabilities

    async def Generate(  # gRPC method name
        self,
        request: gateway_pb2.GenerateRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[gateway_pb2.GenerateResponse]:
        """Streams the events of one generation."""
        if self._readiness is not None:
            await self._readiness.refuse_unless_serving("render")
        # The request id goes out at once, before the first event.
        await context.send_initial_metadata(((REQUEST_ID_KEY, request_id_var.get()),))
        # Closed explicitly, so a caller's cancel that lands between two events runs the
        # orchestrator's cleanup (cancelling its Render call) now, not when the suspended
        # generator is collected.
        events = self._orchestrator.generate(request, time_remaining=context.time_remaining())
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def Plan(  # gRPC method name
        self,
        request: gateway_pb2.PlanRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> gateway_pb2.PlanResponse:
        """Analyses and plans without rendering."""
        return await self._orchestrator.plan(request, time_remaining=context.time_remaining())

    async def SubmitGenerate(  # gRPC method name
        self,
        request: gateway_pb2.SubmitGenerateRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> operations_proto_pb2.Operation:
        """Starts a generation as a job; returns its operation at once."""
        return await self._jobs.submit_generate(request)

    async def WatchOperation(  # gRPC method name
        self,
        request: gateway_pb2.WatchOperationRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[gateway_pb2.GenerateResponse]:
        """Streams a job's events from an event index."""
        events = self._jobs.watch_operation(request)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def GetCapabilities(  # gRPC method name
        self,
        request: gateway_pb2.GetCapabilitiesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> gateway_pb2.GetCapabilitiesResponse:
        """What the system can do right now."""
        return await self._capabilities.get(refresh=request.refresh)
