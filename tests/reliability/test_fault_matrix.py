"""The fault matrix: each backend fault, injected into the stand-ins, and what the caller gets.

Every cell runs one image-to-image ``Generate`` through the whole system and asserts the
promised outcome exactly: a fallback flagged by a warning, a retry that succeeds (no
warning, the model's answer), or a clear status with its ``ErrorInfo`` reason. After
every cell the RPCs have ended, no server answered UNKNOWN or INTERNAL, and the ComfyUI
stand-in has nothing queued or running.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import grpc
import pytest

from imagegen.common.v1 import common_pb2
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.system import System, start_system
from tests.reliability.inputs import img2img
from tests.reliability.invariants import RpcLedger, settle
from tests.reliability.outcomes import Expected, assert_outcome, generate

FALLBACK = Expected(
    analysis=common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK,
    plan=common_pb2.PLAN_SOURCE_RULES,
    warnings=frozenset({"ANALYSIS_FALLBACK", "PLAN_FALLBACK"}),
)
"""Both models unusable: the image described from its metadata, keyword rules planned."""
RECOVERED = Expected(no_fallback=True)
"""A retry succeeded: the models' own answers and no fallback warning."""


@dataclass(frozen=True)
class Cell:
    """One fault and its promised outcome.

    Attributes:
        id: Names the cell in the test report.
        inject: Puts the fault in force on the started system.
        expected: The outcome.
        check: Evidence the fault did happen (a retry, a dropped socket), on the system.
        variants: Variants requested.
        step_delay_s: ComfyUI stand-in seconds per sampling step.
        environment: Service settings for this cell (read when the services start).
    """

    id: str
    inject: Callable[[System], Awaitable[None] | None]
    expected: Expected
    check: Callable[[System], bool] = lambda _: True
    variants: int = 1
    step_delay_s: float = 0.0
    environment: Mapping[str, str] = field(default_factory=dict)


def _ollama(**fault: object) -> Callable[[System], None]:
    def inject(system: System) -> None:
        system.ollama.fake.faults.add(**fault)

    return inject


def _comfyui(**faults: object) -> Callable[[System], None]:
    def inject(system: System) -> None:
        for name, value in faults.items():
            setattr(system.comfyui.fake.faults, name, value)

    return inject


def _saving_comfyui(**faults: object) -> Callable[[System], None]:
    """Faults on a ComfyUI without ``SaveImageWebsocket``: results are saved and fetched
    with ``/view``."""

    def inject(system: System) -> None:
        system.comfyui.fake.set_model_files(unavailable_nodes=["SaveImageWebsocket"])
        _comfyui(**faults)(system)

    return inject


async def _refuse_ollama(system: System) -> None:
    await system.ollama.refuse_connections()


async def _refuse_comfyui(system: System) -> None:
    await system.comfyui.refuse_connections(True)


def _vision_retried(system: System) -> bool:
    return system.ollama_chats("llava") >= 2


def _nothing_queued(system: System) -> bool:
    return system.comfyui.fake.counters.prompts_submitted == 0


_SHORT_MODEL_CALLS = {"VISION_CALL_TIMEOUT_S": "0.2", "PLANNER_CALL_TIMEOUT_S": "0.2"}

OLLAMA_CELLS = [
    Cell("ollama-refused", _refuse_ollama, FALLBACK),
    Cell("ollama-slow-within-call-timeout", _ollama(kind="delay", delay_s=0.3), RECOVERED),
    Cell(
        "ollama-slow-once-past-call-timeout",
        _ollama(kind="delay", delay_s=1.0, times=1),
        RECOVERED,
        check=_vision_retried,
        environment=_SHORT_MODEL_CALLS,
    ),
    Cell(
        "ollama-slow-always-past-call-timeout",
        _ollama(kind="delay", delay_s=1.0),
        FALLBACK,
        environment=_SHORT_MODEL_CALLS,
    ),
    Cell("ollama-500-once", _ollama(kind="error", times=1), RECOVERED, check=_vision_retried),
    Cell("ollama-500-always", _ollama(kind="error"), FALLBACK),
    Cell(
        "ollama-malformed-json-once",
        _ollama(kind="malformed_json", times=1),
        RECOVERED,
        check=_vision_retried,
    ),
    Cell("ollama-malformed-json-always", _ollama(kind="malformed_json"), FALLBACK),
    Cell(
        "ollama-schema-violation-once",
        _ollama(kind="schema_violation", times=1),
        RECOVERED,
        check=_vision_retried,
    ),
    Cell("ollama-schema-violation-always", _ollama(kind="schema_violation"), FALLBACK),
    Cell(
        "ollama-truncated-stream-once",
        _ollama(kind="truncated_stream", times=1),
        RECOVERED,
        check=_vision_retried,
    ),
    Cell("ollama-truncated-stream-always", _ollama(kind="truncated_stream"), FALLBACK),
    Cell(
        "ollama-runner-died-mid-stream-once",
        _ollama(kind="stream_error", times=1),
        RECOVERED,
        check=_vision_retried,
    ),
    Cell(
        "ollama-vision-materials-missing-always",
        _ollama(kind="missing_fields", model="llava", fields=("materials",)),
        Expected(warnings=frozenset({"ANALYSIS_INCOMPLETE"})),
        check=_vision_retried,  # the targeted re-ask
    ),
    Cell(
        "ollama-vision-model-not-pulled",
        _ollama(kind="error", model="llava", status=404, message="model 'llava' not found"),
        Expected(
            code=grpc.StatusCode.FAILED_PRECONDITION,
            reason="MODEL_NOT_FOUND",
            message="llava",
        ),
        check=_nothing_queued,
    ),
]

COMFYUI_CELLS = [
    Cell(
        "comfyui-refused",
        _refuse_comfyui,
        Expected(
            code=grpc.StatusCode.UNAVAILABLE,
            reason="BACKEND_UNAVAILABLE",
            message="no ComfyUI backend answers",
        ),
        check=_nothing_queued,
    ),
    Cell(
        "comfyui-500-on-queue-once",
        _comfyui(http_500_routes=["POST /prompt"], http_500_count=1),
        RECOVERED,
        check=lambda s: s.comfyui.fake.counters.http_500_injected == 1,
    ),
    Cell(
        "comfyui-500-on-queue-always",
        _comfyui(http_500_routes=["POST /prompt"]),
        Expected(
            code=grpc.StatusCode.UNAVAILABLE,
            reason="BACKEND_UNAVAILABLE",
            message="500",
        ),
        check=_nothing_queued,
    ),
    Cell(
        "comfyui-500-on-history-once",
        # The outcome normally comes over the websocket; /history is read when the
        # socket drops and the render has to recover what it missed.
        _comfyui(http_500_routes=["/history/{prompt_id}"], http_500_count=1, ws_drop_after_step=2),
        RECOVERED,
        check=lambda s: s.comfyui.fake.counters.http_500_injected == 1,
    ),
    Cell(
        "comfyui-500-on-view-once",
        _saving_comfyui(http_500_routes=["/view"], http_500_count=1),
        RECOVERED,
        check=lambda s: s.comfyui.fake.counters.http_500_injected == 1,
    ),
    Cell(
        "comfyui-websocket-dropped-mid-render",
        _comfyui(ws_drop_after_step=2),
        Expected(results=2),
        check=lambda s: s.comfyui.fake.counters.ws_drops >= 1,
        variants=2,
        step_delay_s=0.02,
    ),
    Cell(
        "comfyui-execution-error",
        _comfyui(execution_error_node="KSampler"),
        Expected(
            code=grpc.StatusCode.ABORTED,
            reason="COMFYUI_EXECUTION_ERROR",
            message="KSampler",
        ),
        variants=2,
    ),
    Cell(
        "comfyui-out-of-memory",
        _comfyui(oom_node="KSampler", oom_after_step=2),
        Expected(
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
            reason="COMFYUI_OUT_OF_MEMORY",
            message="out of GPU memory",
        ),
        variants=2,
    ),
    Cell(
        "comfyui-slow-queue",
        _comfyui(queue_delay_s=0.2),
        Expected(results=2),
        check=lambda s: s.comfyui.fake.counters.prompts_succeeded == 2,
        variants=2,
    ),
    Cell("comfyui-slow-http", _comfyui(http_delay_s=0.05), RECOVERED),
]


async def _run_cell(cell: Cell, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in cell.environment.items():
        monkeypatch.setenv(name, value)
    async with AsyncExitStack() as stack:
        system = await start_system(
            stack,
            comfyui=FakeComfyUISettings(step_delay_s=cell.step_delay_s),
            plan_reuse_window_s=0.0,
        )
        ledger = RpcLedger.open()
        injected = cell.inject(system)
        if injected is not None:
            await injected
        outcome = await generate(system.stub, img2img(variants=cell.variants), deadline_s=20)
        assert_outcome(outcome, cell.expected)
        assert cell.check(system), f"{cell.id}: the fault left no trace"
        await settle(system.comfyui, ledger)
        assert ledger.codes("Generate") == {outcome.code.name: 1}


@pytest.mark.parametrize("cell", OLLAMA_CELLS, ids=lambda cell: cell.id)
async def test_ollama_fault_ends_as_promised(cell: Cell, monkeypatch: pytest.MonkeyPatch) -> None:
    await _run_cell(cell, monkeypatch)


@pytest.mark.parametrize("cell", COMFYUI_CELLS, ids=lambda cell: cell.id)
async def test_comfyui_fault_ends_as_promised(cell: Cell, monkeypatch: pytest.MonkeyPatch) -> None:
    await _run_cell(cell, monkeypatch)
