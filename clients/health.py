"""The ``health`` command: the gateway's health, its view of each service, each service's
own view of its language model, and optionally each service asked directly.

The vision and planner services answer NOT_SERVING while their model backend is down,
yet still answer requests with their fallback, so the gateway stays SERVING; those lines
say so and do not fail the check. The gateway, its service and render must be SERVING.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
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

_FALLBACK_SERVICES = frozenset({"vision", "planner"})
"""Services that still answer (with a fallback) while NOT_SERVING."""


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
    checks: list[tuple[str, str, grpc.Channel, str]] = [
        ("gateway", "gateway", channel, ""),
        ("gateway service", "gateway", channel, GATEWAY_SERVICE),
    ]
    checks += [
        (f"{name} (seen by the gateway)", name, channel, full)
        for name, full in SERVICE_NAMES.items()
    ]
    checks += [(f"{name} (direct)", name, ch, SERVICE_NAMES[name]) for name, ch in direct]
    healthy = True
    for label, name, ch, service in checks:
        status = _check(ch, service, timeout, metadata if ch is channel else ())
        note = ""
        if name in _FALLBACK_SERVICES and status == "NOT_SERVING":
            note = " (its model is not ready: requests get the fallback)"
        else:
            healthy &= status == "SERVING"
        print(f"{label:<30} {status}{note}", file=stream)
    for line in _model_lines(channel, timeout, metadata):
        print(line, file=stream)
    stream.flush()
    return healthy


def _model_lines(
    channel: grpc.Channel, timeout: float, metadata: Sequence[tuple[str, str]]
) -> list[str]:
    """One line per language model, as its service sees it (from ``GetCapabilities``)."""
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
    try:
        caps = stub.GetCapabilities(
            gateway_pb2.GetCapabilitiesRequest(refresh=True),
            timeout=timeout,
            metadata=tuple(metadata) or None,
        )
    except grpc.RpcError as e:
        return [f"{'language models':<30} unknown ({_code_name(e)})"]
    lines = []
    for model in caps.language_models:
        name = f"{model.model} on {model.backend}" if model.model else "unknown"
        reason = f" ({model.reason})" if model.reason else ""
        lines.append(f"{model.service + ' model':<30} {name}: {model.state}{reason}")
    return lines


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
        return _code_name(e)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def _code_name(error: grpc.RpcError) -> str:
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    return str(code.name)
