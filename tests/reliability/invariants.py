"""What must hold after every request, whatever went wrong during it.

- Every RPC the servers were handling has ended (none hangs).
- No server answered UNKNOWN or INTERNAL (every failure is a status that says why).
- The ComfyUI stand-in has nothing queued and nothing running (no job was left behind).

The servers run in this process, so their Prometheus metrics (the shared registry of
:mod:`services.common.metrics`) show what each one answered; a :class:`RpcLedger` takes
the counts before a request and reads the difference after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from standins.comfyui.server import RunningFakeComfyUI
from tests.gateway.system import System

__all__ = [
    "SERVICES",
    "RpcLedger",
    "assert_clear_failure",
    "assert_comfyui_idle",
    "eventually",
    "rpcs_in_flight",
    "settle",
]

SERVICES = (
    "imagegen.gateway.v1.GatewayService",
    "imagegen.vision.v1.VisionService",
    "imagegen.planner.v1.PlannerService",
    "imagegen.render.v1.RenderService",
)
"""The services whose RPCs are accounted (health checks are not)."""

_UNCLEAR = frozenset({grpc.StatusCode.UNKNOWN.name, grpc.StatusCode.INTERNAL.name})
_POLL_S = 0.02


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout_s: float, what: str
) -> None:
    """Waits until ``condition()`` holds, checking every 20 ms, for at most ``timeout_s``.

    Used where no event can be awaited (another server's internal state).

    Raises:
        AssertionError: Naming ``what`` did not happen in time.
    """
    give_up = time.monotonic() + timeout_s
    while True:
        held = condition()
        if not isinstance(held, bool):
            held = await held
        if held:
            return
        if time.monotonic() > give_up:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        await asyncio.sleep(_POLL_S)


def rpcs_in_flight() -> dict[str, float]:
    """RPCs being handled now by each server in this process, by ``service/method``."""
    found: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if metric.name != "imagegen_rpcs_in_flight":
            continue
        for sample in metric.samples:
            service = sample.labels.get("service", "")
            if service in SERVICES and sample.value:
                found[f"{service}/{sample.labels.get('method')}"] = sample.value
    return found


def _rpc_counts() -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for metric in REGISTRY.collect():
        if metric.name != "imagegen_rpc_seconds":
            continue
        for sample in metric.samples:
            if not sample.name.endswith("_count"):
                continue
            labels = sample.labels
            if labels.get("service") in SERVICES:
                key = (labels["service"], labels["method"], labels["code"])
                counts[key] = int(sample.value)
    return counts


@dataclass
class RpcLedger:
    """The RPCs the servers finished since the ledger was opened, by service, method, code.

    The metrics are process-wide, so everything is relative to the moment of opening:
    servers of other tests in the same process do not count.
    """

    _before: Counter[tuple[str, str, str]]
    _in_flight_before: dict[str, float]

    @classmethod
    def open(cls) -> RpcLedger:
        """Starts counting from now."""
        return cls(_rpc_counts(), rpcs_in_flight())

    def still_running(self) -> dict[str, float]:
        """RPCs in flight now beyond those in flight when the ledger was opened."""
        return {
            key: value
            for key, value in rpcs_in_flight().items()
            if value > self._in_flight_before.get(key, 0.0)
        }

    def finished(self) -> Counter[tuple[str, str, str]]:
        """``(service, method, code) → calls`` finished since :meth:`open`."""
        now = _rpc_counts()
        now.subtract(self._before)
        return +now

    def codes(self, method: str) -> Counter[str]:
        """Status codes the servers answered ``method`` (e.g. ``"Generate"``) with."""
        found: Counter[str] = Counter()
        for (_, name, code), calls in self.finished().items():
            if name == method:
                found[code] += calls
        return found

    def unclear(self) -> dict[tuple[str, str, str], int]:
        """Calls answered UNKNOWN or INTERNAL (should be none)."""
        return {key: n for key, n in self.finished().items() if key[2] in _UNCLEAR}


def assert_comfyui_idle(comfyui: RunningFakeComfyUI) -> None:
    """Nothing pending and nothing running on the ComfyUI stand-in."""
    fake = comfyui.fake
    assert fake.queued_ids == [], f"prompts left pending: {fake.queued_ids}"
    assert fake.running_ids == [], f"prompt left running: {fake.running_ids}"


async def settle(
    comfyui: RunningFakeComfyUI, ledger: RpcLedger, *, timeout_s: float = 10.0
) -> None:
    """Waits for the servers to finish every RPC, then checks the invariants.

    Args:
        comfyui: The ComfyUI stand-in the render service used.
        ledger: Opened before the request(s) under test.
        timeout_s: Bound of each wait.

    Raises:
        AssertionError: An RPC still running, an UNKNOWN/INTERNAL answer, or a job left
            in ComfyUI.
    """
    await eventually(
        lambda: not ledger.still_running(),
        timeout_s=timeout_s,
        what="every RPC of the servers ended",
    )
    if comfyui.is_running:
        await comfyui.fake.wait_until_idle(timeout_s=timeout_s)
    assert_comfyui_idle(comfyui)
    assert ledger.unclear() == {}, f"unclear statuses: {ledger.unclear()}"


def assert_clear_failure(code: grpc.StatusCode, message: str) -> None:
    """A failed call's status says what happened: a specific code and a message."""
    assert code not in (grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN), code
    assert code is not grpc.StatusCode.INTERNAL, f"INTERNAL: {message}"
    assert message.strip(), f"{code.name} without a message"


async def wait_for_gateway_view(system: System, service: str, status: int) -> None:
    """Waits until the gateway publishes ``status`` for a downstream ``service``."""
    async with grpc.aio.insecure_channel(system.gateway.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        async with asyncio.timeout(15):
            while True:
                try:
                    answer = await health.Check(
                        health_pb2.HealthCheckRequest(service=service), timeout=2
                    )
                    if answer.status == status:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.05)
