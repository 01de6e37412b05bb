"""The gateway's clients of the vision, planner and render services.

One channel per service, opened at startup and closed at shutdown. A service address is
``host:port`` (resolved through DNS, so every replica behind a name shares the load by
``round_robin``), a comma-separated list of IP ``host:port`` pairs, or any gRPC target
(``dns:///vision:50052``). Unary calls are retried on UNAVAILABLE by the channel's
service config; the render stream is not (it is not safe to repeat once started).

A downstream failure reaches the caller with its own status code and details, the
message prefixed with the service it came from.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegen.planner.v1 import planner_pb2, planner_pb2_grpc
from imagegen.render.v1 import render_pb2, render_pb2_grpc
from imagegen.vision.v1 import vision_pb2, vision_pb2_grpc
from services.common.channels import ClientTLS, create_channel
from services.common.errors import (
    BackendUnavailableError,
    DeadlineExceededError,
    DownstreamError,
    ImagegenError,
)

__all__ = [
    "PLANNER_SERVICE",
    "RENDER_SERVICE",
    "SERVICE_NAMES",
    "VISION_SERVICE",
    "Downstream",
    "grpc_target",
    "relay_error",
]

VISION_SERVICE = vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name
PLANNER_SERVICE = planner_pb2.DESCRIPTOR.services_by_name["PlannerService"].full_name
RENDER_SERVICE = render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name
SERVICE_NAMES: Mapping[str, str] = {
    "vision": VISION_SERVICE,
    "planner": PLANNER_SERVICE,
    "render": RENDER_SERVICE,
}
"""Short name → fully qualified gRPC service name."""

_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


def grpc_target(address: str) -> str:
    """The gRPC channel target for a configured service address.

    | address | target |
    |---|---|
    | ``vision:50052`` | ``dns:///vision:50052`` (every A record, round-robin) |
    | ``10.0.0.5:50052,10.0.0.6:50052`` | ``ipv4:10.0.0.5:50052,10.0.0.6:50052`` |
    | ``dns:///vision:50052`` | unchanged |

    Args:
        address: The configured value.

    Returns:
        A target for ``grpc.aio.insecure_channel``.

    Raises:
        ValueError: A list that mixes host names, or an entry without a port.
    """
    address = address.strip()
    if address.startswith(_SCHEMES):
        return address
    entries = [entry.strip() for entry in address.split(",")]
    if len(entries) == 1:
        _split_port(entries[0])
        return f"dns:///{entries[0]}"
    hosts = [_split_port(entry)[0] for entry in entries]
    try:
        versions = {ipaddress.ip_address(host.strip("[]")).version for host in hosts}
    except ValueError as e:
        raise ValueError(
            f"{address!r}: a list must hold IP addresses; use one DNS name "
            "(all its addresses are used) for host names"
        ) from e
    if len(versions) != 1:
        raise ValueError(f"{address!r}: do not mix IPv4 and IPv6 addresses in one list")
    return f"ipv{versions.pop()}:{','.join(entries)}"


def _split_port(entry: str) -> tuple[str, int]:
    host, sep, port = entry.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{entry!r} is not host:port")
    return host, int(port)


def relay_error(
    service: str, error: grpc.aio.AioRpcError, *, timeout_s: float | None = None
) -> ImagegenError:
    """The error the gateway answers with when a downstream call failed.

    Args:
        service: Short name of the downstream service (``"vision"``).
        error: The failed call.
        timeout_s: The timeout the gateway gave the call, to explain a deadline.

    Returns:
        The downstream's own code, message and details, the message naming the service;
        UNAVAILABLE and DEADLINE_EXCEEDED without details get an ErrorInfo saying which
        service did not answer.
    """
    relayed = DownstreamError.from_rpc_error(error)
    message = f"{service} service: {relayed.message}"
    details = _callers_fields(service, relayed.packed_details)
    if not relayed.packed_details:
        if relayed.code == grpc.StatusCode.UNAVAILABLE:
            return BackendUnavailableError(message, backend=service)
        if relayed.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            budget = f" within its {timeout_s:.1f} s budget" if timeout_s is not None else ""
            return DeadlineExceededError(
                f"{service} service did not answer{budget}", metadata={"service": service}
            )
    return DownstreamError(relayed.code, message, details)


# Where a downstream request field came from in the caller's GenerateRequest/PlanRequest,
# so a BadRequest names the field the caller can fix (longest prefix first).
_CALLER_FIELDS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "vision": (("image", "source_image"),),
    "planner": (("overrides", "sampler"),),
    "render": (
        ("settings", "sampler"),
        ("positive_prompt", "plan.positive_prompt"),
        ("negative_prompt", "plan.negative_prompt"),
    ),
}


def _callers_fields(service: str, packed: tuple[any_pb2.Any, ...]) -> list[any_pb2.Any]:
    """``packed`` with BadRequest field paths renamed to the caller's request fields."""
    prefixes = _CALLER_FIELDS.get(service, ())
    details = []
    for detail in packed:
        bad = error_details_pb2.BadRequest()
        if prefixes and detail.Unpack(bad):
            for violation in bad.field_violations:
                violation.field = _renamed(violation.field, prefixes)
            detail = any_pb2.Any()
            detail.Pack(bad)
        details.append(detail)
    return details


def _renamed(field: str, prefixes: tuple[tuple[str, str], ...]) -> str:
    for theirs, ours in prefixes:
        if field == theirs or field.startswith((f"{theirs}.", f"{theirs}[")):
            return ours + field[len(theirs) :]
    return field


@dataclass
class Downstream:
    """Stubs of the three services the gateway calls, and their channels.

    Attributes:
        vision: Vision service stub.
        planner: Planner service stub.
        render: Render service stub.
        channels: Short service name → its channel.
        addresses: Short service name → the configured address (for messages).
    """

    vision: vision_pb2_grpc.VisionServiceStub
    planner: planner_pb2_grpc.PlannerServiceStub
    render: render_pb2_grpc.RenderServiceStub
    channels: dict[str, grpc.aio.Channel]
    addresses: dict[str, str]

    @classmethod
    def connect(
        cls,
        *,
        vision_address: str,
        planner_address: str,
        render_address: str,
        max_message_bytes: int,
        tls: ClientTLS | None = None,
    ) -> Downstream:
        """Opens one channel per service (connections are made lazily, on first use).

        Args:
            vision_address: Address of the vision service.
            planner_address: Address of the planner service.
            render_address: Address of the render service.
            max_message_bytes: Message size limit, the same as the servers'.
            tls: TLS towards the services; None for plaintext.

        Returns:
            The stubs; :meth:`close` them at shutdown.
        """
        addresses = {
            "vision": vision_address,
            "planner": planner_address,
            "render": render_address,
        }
        channels = {
            name: create_channel(
                grpc_target(address),
                max_message_bytes=max_message_bytes,
                # Render is a stream: only the caller knows whether repeating it is safe.
                retry_services=[SERVICE_NAMES[name]] if name != "render" else [],
                tls=tls,
            )
            for name, address in addresses.items()
        }
        return cls(
            vision=vision_pb2_grpc.VisionServiceStub(channels["vision"]),  # type: ignore[no-untyped-call]
            planner=planner_pb2_grpc.PlannerServiceStub(channels["planner"]),  # type: ignore[no-untyped-call]
            render=render_pb2_grpc.RenderServiceStub(channels["render"]),  # type: ignore[no-untyped-call]
            channels=channels,
            addresses=addresses,
        )

    async def health(self, *, timeout_s: float) -> dict[str, str]:
        """Asks every service's health, concurrently.

        Args:
            timeout_s: Deadline of each check.

        Returns:
            Short service name → ``"SERVING"``, ``"NOT_SERVING"``, or the gRPC code of a
            failed check (``"UNAVAILABLE"``, ``"DEADLINE_EXCEEDED"``...).
        """
        names = list(self.channels)
        answers = await asyncio.gather(*(self.check(name, timeout_s=timeout_s) for name in names))
        return dict(zip(names, answers, strict=True))

    async def check(self, name: str, *, timeout_s: float) -> str:
        """Asks one service's health, as :meth:`health` does for each.

        Args:
            name: Short service name, e.g. ``"render"``.
            timeout_s: Deadline of the check.

        Returns:
            ``"SERVING"``, ``"NOT_SERVING"``, or the gRPC code of a failed check.
        """
        stub = health_pb2_grpc.HealthStub(self.channels[name])
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name]), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as e:
            return str(e.code().name)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    async def close(self) -> None:
        """Closes every channel, cancelling calls still running on them."""
        await asyncio.gather(*(channel.close() for channel in self.channels.values()))
