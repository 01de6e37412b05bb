"""The gateway's health, drawn from its downstream services' health.

The gateway reports SERVING while it can still produce images:

| service | its status | the gateway |
|---|---|---|
| render | SERVING | can render |
| render | anything else | NOT_SERVING: nothing renders |
| vision, planner | SERVING | analyses and plans with the models |
| vision, planner | NOT_SERVING | SERVING: the service answers with its fallback |
| vision, planner | no answer | NOT_SERVING: nobody answers |

A vision or planner service is NOT_SERVING while its model backend is down, and then
still answers: from the image's metadata, or by keyword rules. No answer at all
(UNAVAILABLE, DEADLINE_EXCEEDED …) leaves nothing to fall back on.

Beside its own status it publishes each downstream service's own answer under that
service's name, so one health call to the gateway (``imagegen health``) shows which one
is down or degraded.

The same view refuses work up front: a ``Generate`` while render is not SERVING would
run both model stages and only then fail, so it is answered UNAVAILABLE at once
(:meth:`DownstreamReadiness.refuse_unless_serving`).
"""

from __future__ import annotations

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from gateway.downstream import SERVICE_NAMES, Downstream
from services.common.errors import BackendUnavailableError

__all__ = ["DownstreamNotReadyError", "DownstreamReadiness"]


class DownstreamNotReadyError(Exception):
    """A downstream service stops the gateway from producing images; the message names
    each one and its status."""


class DownstreamReadiness:
    """A readiness check for ``GrpcServer.watch_readiness``.

    Args:
        downstream: The gateway's downstream clients.
        health: The gateway's own health servicer, where each downstream's status is
            published under its fully qualified service name.
        timeout_s: Deadline of one downstream health check.
    """

    def __init__(
        self, downstream: Downstream, health: health_aio.HealthServicer, *, timeout_s: float
    ) -> None:
        self._downstream = downstream
        self._health = health
        self._timeout_s = timeout_s
        self.last: dict[str, str] = {}
        """The statuses seen by the latest check, by short service name."""

    async def check(self) -> bool:
        """Asks every downstream service and publishes what it answered.

        Returns:
            True when the gateway can produce images (see the module's table).

        Raises:
            DownstreamNotReadyError: Naming each service that stops it, with its address
                and status (the server logs it as the reason for NOT_SERVING).
        """
        statuses = await self._downstream.health(timeout_s=self._timeout_s)
        self.last = statuses
        for name, status in statuses.items():
            serving = status == "SERVING"
            await self._health.set(
                SERVICE_NAMES[name],
                health_pb2.HealthCheckResponse.SERVING
                if serving
                else health_pb2.HealthCheckResponse.NOT_SERVING,
            )
        failing = [
            f"{name} ({self._downstream.addresses[name]}): {status}"
            for name, status in statuses.items()
            if not _can_serve(name, status)
        ]
        if failing:
            raise DownstreamNotReadyError("; ".join(failing))
        return True

    async def refuse_unless_serving(self, name: str) -> None:
        """Refuses work that needs ``name`` while it is not SERVING.

        The latest check decides when it found the service SERVING (or has not run
        yet). Otherwise every service is asked again at once, since the view may be up
        to a poll interval old (a service just started, or just back), and the work is
        refused only if ``name`` is still not SERVING.

        Args:
            name: Short service name, e.g. ``"render"``.

        Raises:
            BackendUnavailableError: UNAVAILABLE naming the service and its status.
        """
        if self.last.get(name, "SERVING") == "SERVING":
            return
        # Behind a multi-address target each check reaches the next replica (round_robin),
        # and one draining replica answers NOT_SERVING while the others serve: ask as many
        # times as there are replicas before refusing.
        status = "UNKNOWN"
        for _ in range(_replica_count(self._downstream.addresses[name])):
            status = await self._downstream.check(name, timeout_s=self._timeout_s)
            if status == "SERVING":
                self.last[name] = status
                return
        self.last[name] = status
        raise BackendUnavailableError(
            f"the {name} service ({self._downstream.addresses[name]}) is {status}; "
            "no generation is accepted until it is SERVING again",
            backend=name,
        )


_FALLBACK_SERVICES = frozenset({"vision", "planner"})
"""Services that answer with a fallback while NOT_SERVING (their model backend is down)."""


def _can_serve(name: str, status: str) -> bool:
    """Whether a downstream service in ``status`` still lets the gateway produce images."""
    if status == "SERVING":
        return True
    return name in _FALLBACK_SERVICES and status == "NOT_SERVING"


def _replica_count(target: str) -> int:
    """How many replicas a target names: the addresses of an ``ipv4:``/``ipv6:`` list, or
    a few for a ``dns:`` name (its replicas are not known here)."""
    if target.startswith("dns:"):
        return 3
    return max(1, target.count(",") + 1)
