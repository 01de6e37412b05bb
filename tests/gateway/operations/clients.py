"""What the job tests call: both stubs of one gateway, and small waits on operations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import grpc.aio
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as operations_pb2

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc

__all__ = [
    "JobClient",
    "connect",
    "metadata_of",
    "response_of",
    "results_of",
    "txt2img",
    "until",
]


@dataclass
class JobClient:
    """The gateway stub and the Operations stub on one channel."""

    gateway: Any
    operations: Any
    metadata: tuple[tuple[str, str], ...] = ()

    async def submit(
        self, request: gateway_pb2.GenerateRequest, **fields: Any
    ) -> operations_pb2.Operation:
        """SubmitGenerate."""
        return await self.gateway.SubmitGenerate(
            gateway_pb2.SubmitGenerateRequest(generate=request, **fields),
            timeout=10,
            metadata=self.metadata,
        )

    async def get(self, name: str) -> operations_pb2.Operation:
        """GetOperation."""
        return await self.operations.GetOperation(
            operations_pb2.GetOperationRequest(name=name), timeout=10, metadata=self.metadata
        )

    async def cancel(self, name: str) -> None:
        """CancelOperation."""
        await self.operations.CancelOperation(
            operations_pb2.CancelOperationRequest(name=name), timeout=10, metadata=self.metadata
        )

    async def watch(self, name: str, after_event: int = 0) -> list[gateway_pb2.GenerateResponse]:
        """Every event of WatchOperation until the job ends."""
        call = self.gateway.WatchOperation(
            gateway_pb2.WatchOperationRequest(name=name, after_event=after_event),
            timeout=30,
            metadata=self.metadata,
        )
        return [event async for event in call]

    async def wait_done(self, name: str, timeout_s: float = 20.0) -> operations_pb2.Operation:
        """Polls GetOperation until the operation is done."""
        return await until(lambda: self.get(name), lambda op: op.done, timeout_s=timeout_s)


async def connect(stack: AsyncExitStack, address: str, token: str | None = None) -> JobClient:
    """A client of the gateway at ``address`` (with a bearer token when given)."""
    channel = grpc.aio.insecure_channel(address)
    stack.push_async_callback(channel.close)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    return JobClient(
        gateway=gateway_pb2_grpc.GatewayServiceStub(channel),  # type: ignore[no-untyped-call]
        operations=operations_pb2_grpc.OperationsStub(channel),
        metadata=metadata,
    )


async def until(call: Any, ready: Any, *, timeout_s: float = 20.0, every_s: float = 0.05) -> Any:
    """Calls ``call()`` until ``ready(result)``; the last result."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await call()
        if ready(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready after {timeout_s} s: {result}")
        await asyncio.sleep(every_s)


def metadata_of(operation: operations_pb2.Operation) -> gateway_pb2.SubmitGenerateMetadata:
    """The operation's typed metadata."""
    metadata = gateway_pb2.SubmitGenerateMetadata()
    assert operation.metadata.Unpack(metadata)
    return metadata


def response_of(operation: operations_pb2.Operation) -> gateway_pb2.SubmitGenerateResponse:
    """The operation's typed response."""
    response = gateway_pb2.SubmitGenerateResponse()
    assert operation.response.Unpack(response), operation
    return response


def results_of(
    events: Sequence[gateway_pb2.GenerateResponse],
) -> list[common_pb2.VariantResult]:
    """The results among events, in order."""
    return [e.result for e in events if e.HasField("result")]


def txt2img(seed: int | None = 7, variants: int = 2, **fields: Any) -> gateway_pb2.GenerateRequest:
    """A small text-to-image request."""
    if seed is not None:
        fields["seed"] = seed
    return gateway_pb2.GenerateRequest(
        instruction="a red cup on a wooden table",
        variants=variants,
        width=256,
        height=256,
        **fields,
    )
