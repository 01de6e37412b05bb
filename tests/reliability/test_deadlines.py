"""The caller's deadline runs out at every stage: a fallback when one fits, else a clear status.

The gateway gives the analysis and the plan each a share of the deadline; a model that
hangs past its share is replaced by the fallback (flagged), so the render still gets its
time. When too little time is left to render, nothing is queued on ComfyUI; when the
deadline passes during the render, its prompts are deleted or interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import grpc
import pytest

from imagegen.common.v1 import common_pb2
from standins.comfyui.server import FakeComfyUI
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.system import start_system
from tests.reliability.inputs import img2img
from tests.reliability.invariants import RpcLedger, eventually, settle
from tests.reliability.outcomes import Expected, assert_outcome, generate
from tests.reliability.tuning import PLANNER_MODEL, VISION_MODEL

DEADLINE_EXCEEDED = Expected(code=grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True)
class Stage:
    """Where the deadline runs out.

    Attributes:
        id: Names the cell.
        deadline_s: The caller's deadline.
        expected: The outcome.
        check: What the ComfyUI stand-in must show afterwards.
        slow_models: Ollama models that answer only after 30 s.
        hold_queue: ComfyUI leaves prompts pending.
        step_delay_s: ComfyUI seconds per sampling step.
        steps: Sampling steps.
        environment: Service settings for this cell (read when the services start).
    """

    id: str
    deadline_s: float
    expected: Expected
    check: Callable[[FakeComfyUI], bool]
    slow_models: tuple[str, ...] = ()
    hold_queue: bool = False
    step_delay_s: float = 0.0
    steps: int = 4
    environment: Mapping[str, str] = field(default_factory=dict)


def _rendered(fake: FakeComfyUI) -> bool:
    return fake.counters.prompts_succeeded == 1


def _nothing_queued(fake: FakeComfyUI) -> bool:
    return fake.counters.prompts_submitted == 0


def _withdrawn(fake: FakeComfyUI) -> bool:
    return fake.counters.prompts_submitted == 1 and fake.counters.prompts_succeeded == 0


STAGES = [
    Stage(
        "analysis",
        5.0,
        Expected(
            analysis=common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK,
            warnings=frozenset({"ANALYSIS_FALLBACK"}),
        ),
        _rendered,
        slow_models=(VISION_MODEL,),
    ),
    Stage(
        "plan",
        5.0,
        Expected(plan=common_pb2.PLAN_SOURCE_RULES, warnings=frozenset({"PLAN_FALLBACK"})),
        _rendered,
        slow_models=(PLANNER_MODEL,),
    ),
    Stage(
        "before-render",
        # Long enough that the fallbacks' shares (a fifth each) hold on a loaded machine.
        4.0,
        Expected(
            code=grpc.StatusCode.DEADLINE_EXCEEDED,
            reason="DEADLINE_EXCEEDED",
            message="none was started",
        ),
        _nothing_queued,
        slow_models=(VISION_MODEL, PLANNER_MODEL),
        # A render needs the whole deadline, so whatever the fallbacks take leaves too little.
        environment={"RENDER_MIN_TIME_BUDGET_S": "4"},
    ),
    Stage("render-queue", 2.0, DEADLINE_EXCEEDED, _withdrawn, hold_queue=True),
    Stage("render-sampling", 2.0, DEADLINE_EXCEEDED, _withdrawn, step_delay_s=0.3, steps=20),
]


@pytest.mark.parametrize("stage", STAGES, ids=lambda stage: stage.id)
async def test_deadline_at_stage_ends_as_promised(
    stage: Stage, exit_stack: AsyncExitStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in stage.environment.items():
        monkeypatch.setenv(name, value)
    system = await start_system(
        exit_stack,
        comfyui=FakeComfyUISettings(step_delay_s=stage.step_delay_s),
        plan_reuse_window_s=0.0,
    )
    for model in stage.slow_models:
        system.ollama.fake.faults.add(kind="delay", delay_s=30.0, model=model)
    fake = system.comfyui.fake
    fake.faults.hold_queue = stage.hold_queue
    ledger = RpcLedger.open()

    outcome = await generate(system.stub, img2img(steps=stage.steps), deadline_s=stage.deadline_s)

    assert_outcome(outcome, stage.expected)
    # The queue is still held: only a delete (not the worker) can have emptied it.
    await eventually(lambda: not fake.queued_ids, timeout_s=10, what="pending prompts deleted")
    fake.faults.hold_queue = False
    await settle(system.comfyui, ledger)
    assert stage.check(fake), fake.counters
    # At the deadline grpc cancels the handler, so the server may count CANCELLED.
    assert set(ledger.codes("Generate")) <= {outcome.code.name, "CANCELLED"}
