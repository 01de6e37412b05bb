"""The ``health`` command: the gateway's health, its view of each service, and optionally
each service asked directly."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegen.gateway.v1 import gateway_pb2
from imagegen.planner.v1 import planner_pb2
from imagegen.render.v1 import render_pb2
from imagegen.vision.v1 import vision_pb2

__all__ = ["GATEWAY_SERVICE", "SERVICE_NAMES", "run_health"]

GATEWAY_SERVICE: str = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name
SERVICE_NAMES: Mapping[str, str] = {
    "vision": vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name,
    "planner": planner_pb2.DESCRIPTOR.services_by_name["PlannerService"].full_name,
    "render": render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name,
}
"""Short name of each service behind the gateway → its fully qualified gRPC name."""


def run_health(
    channel: grpc.Channel,
    stream: TextIO,
    *,
    timeout: float = 3.0,
    direct: Iterable[tuple[str, grpc.Channel]] = (),
    metadata: Sequence[tuple[str, str]] = (),
) -> bool:
    """Asks the gateway's health, its view of each downstream service, and optionally
    each service directly.

    Args:
        channel: A channel to the gateway.
        stream: Where to print one line per check.
        timeout: Seconds per check.
        direct: (short service name, channel to it) for services to ask directly.
        metadata: Call metadata for the gateway, e.g. the caller's token.

    Returns:
        True when every check answered SERVING.
    """
    checks: list[tuple[str, grpc.Channel, str]] = [
        ("gateway", channel, ""),
        ("gateway service", channel, GATEWAY_SERVICE),
    ]
    checks += [
        (f"{name} (seen by the gateway)", channel, full) for name, full in SERVICE_NAMES.items()
    ]
    checks += [(f"{name} (direct)", ch, SERVICE_NAMES[name]) for name, ch in direct]
    healthy = True
    for label, ch, service in checks:
        status = _check(ch, service, timeout, metadata if ch is channel else ())
        healthy &= status == "SERVING"
        print(f"{label:<30} {status}", file=stream)
    stream.flush()
    return healthy


def _check(
    channel: grpc.Channel, service: str, timeout: float, metadata: Sequence[tuple[str, str]]
) -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = stub.Check(
            health_pb2.HealthCheckRequest(service=service),
            timeout=timeout,
            metadata=tuple(metadata) or None,
        )
    except grpc.RpcError as e:
        code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
        return str(code.name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
