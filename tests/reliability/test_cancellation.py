"""The caller cancels at every stage: the work downstream stops, and nothing is left behind.

A cancelled call must cancel the downstream call in flight (the vision or planner RPC,
the render stream), must not start the stages after it, and must withdraw its ComfyUI
prompts: the pending ones deleted, the running one interrupted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.system import System, start_system
from tests.reliability.inputs import img2img
from tests.reliability.invariants import RpcLedger, eventually, settle
from tests.reliability.outcomes import Outcome, until_event
from tests.reliability.stream_teardown import SKIP_REASON, server_crashes
from tests.reliability.tuning import PLANNER_MODEL, VISION_MODEL


def _model_asked(prefix: str) -> Callable[[System, Any, Outcome], Awaitable[None]]:
    async def reached(system: System, call: Any, outcome: Outcome) -> None:
        await eventually(
            lambda: system.ollama_chats(prefix) >= 1,
            timeout_s=5,
            what=f"the {prefix} model was asked",
        )

    return reached


def _event(kind: str) -> Callable[[System, Any, Outcome], Awaitable[None]]:
    async def reached(system: System, call: Any, outcome: Outcome) -> None:
        assert await until_event(call, outcome, lambda e: e.WhichOneof("event") == kind)

    return reached


@dataclass(frozen=True)
class Stage:
    """Where the caller cancels.

    Attributes:
        id: Names the cell.
        reached: Returns once the call is in the stage.
        cancelled_downstream: The downstream RPC the cancel must reach (it ends CANCELLED).
        slow_model: Ollama model kept busy, so the stage lasts ("" = none).
        hold_queue: ComfyUI leaves prompts pending, so the render waits in its queue.
        cancels_stream: The cancel reaches the render stream while it streams events.
    """

    id: str
    reached: Callable[[System, Any, Outcome], Awaitable[None]]
    cancelled_downstream: str
    slow_model: str = ""
    hold_queue: bool = False
    cancels_stream: bool = False


STAGES = [
    Stage("analysis", _model_asked(VISION_MODEL), "AnalyzeImage", slow_model=VISION_MODEL),
    Stage("plan", _model_asked(PLANNER_MODEL), "PlanPrompt", slow_model=PLANNER_MODEL),
    Stage("render-queued", _event("queued"), "Render", hold_queue=True, cancels_stream=True),
    Stage("render-sampling", _event("progress"), "Render", cancels_stream=True),
    Stage("between-variants", _event("result"), "Render", cancels_stream=True),
]


@pytest.mark.parametrize("stage", STAGES, ids=lambda stage: stage.id)
async def test_caller_cancel_stops_downstream_and_leaves_no_comfyui_job(
    stage: Stage, exit_stack: AsyncExitStack
) -> None:
    if stage.cancels_stream and server_crashes():
        pytest.skip(SKIP_REASON)
    system = await start_system(
        exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.05), plan_reuse_window_s=0.0
    )
    if stage.slow_model:
        system.ollama.fake.faults.add(kind="delay", delay_s=3.0, model=stage.slow_model)
    fake = system.comfyui.fake
    fake.faults.hold_queue = stage.hold_queue
    ledger = RpcLedger.open()

    call = system.stub.Generate(img2img(variants=2, steps=6), timeout=20)
    outcome = Outcome()
    await stage.reached(system, call, outcome)
    call.cancel()
    assert await call.code() == grpc.StatusCode.CANCELLED
    # The queue is still held: only a delete (not the worker) can have emptied it.
    await eventually(lambda: not fake.queued_ids, timeout_s=10, what="pending prompts deleted")
    fake.faults.hold_queue = False
    await settle(system.comfyui, ledger)
    assert ledger.codes("Generate") == {"CANCELLED": 1}
    assert ledger.codes(stage.cancelled_downstream) == {"CANCELLED": 1}
    succeeded = fake.counters.prompts_succeeded
    assert succeeded == len(outcome.results), "a prompt ran on after the caller left"
    if stage.slow_model:
        assert fake.counters.prompts_submitted == 0, "a later stage started after the cancel"


def test_cancelled_streams_leave_their_server_running() -> None:
    # In a child process: a crash fails this test instead of ending the whole run.
    assert not server_crashes()
