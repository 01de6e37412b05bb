"""A storm of cancelled ``Generate`` calls, and the check that it leaves nothing running.

Thirty callers each ask for two variants at 0.1 s per sampling step and all cancel while
their work is spread over every stage (analysis, plan, render queued, render sampling).
Within :data:`SETTLE_S` of the cancels no RPC may be in flight on any server (the
interceptor's ``imagegen_rpcs_in_flight``) and the ComfyUI stand-in must hold no prompt,
queued or running. Before the fixes of the cancel path, a cancellation swallowed by
``asyncio.wait_for`` left about half of such rounds with ``Render`` calls running to the end.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from gateway.downstream import RENDER_SERVICE
from tests.gateway.system import System
from tests.reliability.inputs import img2img
from tests.reliability.invariants import RpcLedger, eventually, wait_for_gateway_view

__all__ = ["CALLS", "GATEWAY_SETTINGS", "SETTLE_S", "STEP_DELAY_S", "cancel_storm_round"]

CALLS = 30
STEP_DELAY_S = 0.1
SETTLE_S = 5.0
GATEWAY_SETTINGS: dict[str, Any] = {
    # Every caller is the same (no tokens): its limits would refuse most of the storm.
    "limit_concurrent_generations": 0,
    "limit_variants_per_minute": 0,
    "plan_reuse_window_s": 0.0,
}


async def cancel_storm_round(system: System, rng: random.Random, round_: int) -> None:
    """One round: :data:`CALLS` calls started together, cancelled 1–2 s later, settled.

    Raises:
        AssertionError: A call ended other than CANCELLED or OK, an RPC was still in flight
            or a prompt still in ComfyUI :data:`SETTLE_S` after the cancels.
    """
    # The storm before may have kept render from answering its readiness probe in time;
    # the gateway refuses all work until it sees render serving again.
    await wait_for_gateway_view(system, RENDER_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    ledger = RpcLedger.open()
    fake = system.comfyui.fake
    calls = [
        system.stub.Generate(
            img2img(index=round_ * CALLS + i, variants=2, steps=20, seed=round_), timeout=120
        )
        for i in range(CALLS)
    ]
    await asyncio.sleep(rng.uniform(1.0, 2.0))
    for call in calls:
        call.cancel()
    codes = [await call.code() for call in calls]
    # UNAVAILABLE: refused up front while a render readiness probe, slowed by the storm,
    # was not answered in time (the gateway accepts no work while render is not serving).
    assert set(codes) <= {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAVAILABLE,
    }, codes
    assert codes.count(grpc.StatusCode.CANCELLED) >= CALLS // 2, codes
    await eventually(
        lambda: not ledger.still_running(),
        timeout_s=SETTLE_S,
        what=f"round {round_}: no RPC in flight ({ledger.still_running()})",
    )
    await eventually(
        lambda: not fake.queued_ids and not fake.running_ids,
        timeout_s=SETTLE_S,
        what=f"round {round_}: no prompt queued or running in ComfyUI",
    )
    assert ledger.unclear() == {}, f"unclear statuses: {ledger.unclear()}"
