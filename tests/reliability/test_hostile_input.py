"""Property tests of ``Generate`` (and the render service behind it) with hostile input.

Whatever the caller sends, the answer is a result or a clean refusal: INVALID_ARGUMENT
naming the bad fields (``google.rpc.BadRequest``) or FAILED_PRECONDITION for a name the
server does not have; never a crash, never UNKNOWN or INTERNAL, and never a file touched
outside the folders the system owns. A working workflow template waits just outside the
workflows folder: a name that reached it would render, and fail the test.

One system serves all the examples of a test (hypothesis runs them inside it).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from imagegen.render.v1 import render_pb2, render_pb2_grpc
from services.render.settings import DEFAULT_WORKFLOWS_DIR
from standins.comfyui.settings import DEFAULT_LORAS, FakeComfyUISettings
from tests.gateway.system import System, start_system
from tests.reliability.hostile import (
    DECOY_WORKFLOW,
    any_float32,
    broken_images,
    hostile_names,
    non_images,
    odd_texts,
)
from tests.reliability.inputs import INSTRUCTION, png_bytes
from tests.reliability.invariants import RpcLedger, assert_clear_failure, settle
from tests.reliability.outcomes import Outcome, collect, generate

REFUSALS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    # One system per test serves every example, on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_UPLOAD_NAME = re.compile(r"[0-9a-f]{64}\.(png|jpg|webp)")

Snapshot = dict[Path, tuple[int, int]]


def _snapshot(root: Path) -> Snapshot:
    found: Snapshot = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            stat = path.stat()
            found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


@dataclass
class Guarded:
    """A system whose files live in one temporary folder, watched for stray writes.

    Attributes:
        system: The system under test.
        root: Holds ``workflows/`` (the templates), ``comfyui/`` (ComfyUI's data), the
            decoy template and a secret file.
        ledger: Counts the servers' answers from the start.
        before: The files under ``root`` before any request.
    """

    system: System
    root: Path
    ledger: RpcLedger
    before: Snapshot

    def assert_nothing_touched_outside_comfyui(self) -> None:
        """Only ComfyUI's own folders changed; uploads are named by content only."""
        comfyui = self.root / "comfyui"
        after = _snapshot(self.root)
        changed = {p for p in after if self.before.get(p) != after[p]} | (
            set(self.before) - set(after)
        )
        stray = sorted(str(p) for p in changed if comfyui not in p.parents)
        assert stray == [], f"touched outside ComfyUI's folders: {stray}"
        names = [record.name for record in self.system.comfyui.fake.upload_records]
        assert all(_UPLOAD_NAME.fullmatch(name) for name in names), names


@pytest.fixture
async def guarded(
    exit_stack: AsyncExitStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Guarded]:
    """The whole system with its workflows and ComfyUI data under ``tmp_path``."""
    workflows = tmp_path / "workflows"
    shutil.copytree(DEFAULT_WORKFLOWS_DIR, workflows)
    for suffix in (".json", ".bindings.json"):
        shutil.copy(workflows / f"flux-img2img{suffix}", tmp_path / f"{DECOY_WORKFLOW}{suffix}")
    (tmp_path / "secret.txt").write_text("nobody reads this\n")
    monkeypatch.setenv("RENDER_WORKFLOWS_DIR", str(workflows))
    comfyui = FakeComfyUISettings(step_delay_s=0.0, data_dir=tmp_path / "comfyui")
    system = await start_system(exit_stack, comfyui=comfyui, plan_reuse_window_s=0.0)
    guarded = Guarded(system, tmp_path, RpcLedger.open(), _snapshot(tmp_path))
    yield guarded
    await settle(system.comfyui, guarded.ledger)
    guarded.assert_nothing_touched_outside_comfyui()


def _violated_fields(outcome: Outcome) -> set[str]:
    return {
        violation.field
        for detail in outcome.details
        if isinstance(detail, error_details_pb2.BadRequest)
        for violation in detail.field_violations
    }


def _assert_clean_refusal(outcome: Outcome, *field_prefixes: str) -> None:
    """INVALID_ARGUMENT naming only the given fields, or FAILED_PRECONDITION with a reason."""
    assert outcome.code in REFUSALS, (outcome.code, outcome.message)
    assert_clear_failure(outcome.code, outcome.message)
    if outcome.code == grpc.StatusCode.INVALID_ARGUMENT:
        fields = _violated_fields(outcome)
        assert fields, f"INVALID_ARGUMENT without field violations: {outcome.message}"
        assert all(f.startswith(field_prefixes) for f in fields), fields
    else:
        assert outcome.reason, f"FAILED_PRECONDITION without ErrorInfo: {outcome.message}"


def _assert_result_or_refusal(outcome: Outcome, variants: int, *field_prefixes: str) -> None:
    event(outcome.code.name)  # shown by --hypothesis-show-statistics
    if outcome.code == grpc.StatusCode.OK:
        assert outcome.completed and len(outcome.results) == variants, outcome.events
    else:
        _assert_clean_refusal(outcome, *field_prefixes)


def _img2img(**fields: object) -> gateway_pb2.GenerateRequest:
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=png_bytes()),
        instruction=INSTRUCTION,
        seed=1,
        sampler=common_pb2.SamplerSettings(steps=2),
    )
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(request, name).extend(value)
        elif hasattr(value, "CopyFrom"):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


_NAME_FIELDS = ("loras", "workflow", "controlnet.model", "sampler.sampler_name")


@EXAMPLES
@given(
    loras=st.lists(hostile_names, min_size=1, max_size=2),
    workflow=st.one_of(st.just(""), hostile_names),
    controlnet_model=st.one_of(st.none(), hostile_names),
    sampler_name=st.one_of(st.none(), hostile_names),
)
async def test_hostile_names_are_refused_through_the_gateway(
    guarded: Guarded,
    loras: list[str],
    workflow: str,
    controlnet_model: str | None,
    sampler_name: str | None,
) -> None:
    request = _img2img(loras=[common_pb2.LoraSpec(name=name) for name in loras], workflow=workflow)
    if controlnet_model is not None:
        request.controlnet.CopyFrom(
            common_pb2.ControlNetSpec(type=common_pb2.CONTROL_TYPE_CANNY, model=controlnet_model)
        )
    if sampler_name is not None:
        request.sampler.sampler_name = sampler_name
    outcome = await generate(guarded.system.stub, request, deadline_s=30)
    _assert_clean_refusal(outcome, *_NAME_FIELDS)


@EXAMPLES
@given(
    loras=st.lists(hostile_names, min_size=1, max_size=2),
    workflow=st.one_of(st.just(""), hostile_names),
    scheduler=st.one_of(st.none(), hostile_names),
)
async def test_hostile_names_are_refused_by_the_render_service_itself(
    guarded: Guarded, loras: list[str], workflow: str, scheduler: str | None
) -> None:
    # The render service is internal, but must not trust its callers' names either.
    channel = grpc.aio.insecure_channel(guarded.system.addresses["render"])
    stub = render_pb2_grpc.RenderServiceStub(channel)  # type: ignore[no-untyped-call]
    request = render_pb2.RenderRequest(
        source_image=common_pb2.Image(data=png_bytes()),
        positive_prompt="warm beige walls in a bright room",
        settings=common_pb2.SamplerSettings(steps=2),
        seed=1,
        loras=[common_pb2.LoraSpec(name=name) for name in loras],
        workflow=workflow,
    )
    if scheduler is not None:
        request.settings.scheduler = scheduler
    outcome = Outcome()
    try:
        async for event in stub.Render(request, timeout=30):
            outcome.events.append(event.WhichOneof("event") or "")
    except grpc.aio.AioRpcError as e:
        outcome.fail(e)
    finally:
        await channel.close()
    _assert_clean_refusal(outcome, "loras", "workflow", "settings")


@EXAMPLES
@given(data=non_images)
async def test_bytes_that_are_no_image_are_refused_naming_the_field(
    guarded: Guarded, data: bytes
) -> None:
    request = _img2img(source_image=common_pb2.Image(data=data, mime_type="image/png"))
    outcome = await generate(guarded.system.stub, request, deadline_s=30)
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (outcome.code, outcome.message)
    assert _violated_fields(outcome) == {"source_image.data"}


@EXAMPLES
@given(data=broken_images())
async def test_broken_images_render_or_are_refused_naming_the_field(
    guarded: Guarded, data: bytes
) -> None:
    request = _img2img(source_image=common_pb2.Image(data=data))
    outcome = await generate(guarded.system.stub, request, deadline_s=30)
    _assert_result_or_refusal(outcome, 1, "source_image.data")


@EXAMPLES
@given(instruction=odd_texts, description=st.one_of(st.none(), odd_texts))
async def test_odd_text_renders_or_is_refused_naming_the_field(
    guarded: Guarded, instruction: str, description: str | None
) -> None:
    request = _img2img(instruction=instruction)
    if description is not None:
        request.description = description
    outcome = await generate(guarded.system.stub, request, deadline_s=30)
    _assert_result_or_refusal(outcome, 1, "instruction", "description")


_UINT32 = st.integers(0, 2**32 - 1)
_CONTROL_TYPES = st.sampled_from(
    [common_pb2.ControlType.Name(v) for v in common_pb2.ControlType.values()]
)


@st.composite
def _extreme_requests(draw: st.DrawFn) -> gateway_pb2.GenerateRequest:
    """Numbers at and past every bound, in every numeric field."""
    sampler = common_pb2.SamplerSettings()
    for name in ("denoise", "cfg", "guidance"):
        if draw(st.booleans()):
            setattr(sampler, name, draw(any_float32))
    sampler.steps = draw(st.one_of(st.integers(0, 3), _UINT32))
    request = _img2img(
        variants=draw(st.one_of(st.integers(0, 2), _UINT32)),
        width=draw(_UINT32),
        height=draw(_UINT32),
        sampler=sampler,
    )
    if draw(st.booleans()):
        request.seed = draw(st.integers(0, 2**64 - 1))
    else:
        request.ClearField("seed")
    if draw(st.booleans()):
        request.loras.append(common_pb2.LoraSpec(name=DEFAULT_LORAS[0], strength=draw(any_float32)))
    if draw(st.booleans()):
        request.controlnet.CopyFrom(
            common_pb2.ControlNetSpec(
                type=draw(_CONTROL_TYPES),
                strength=draw(any_float32),
                start_percent=draw(any_float32),
                end_percent=draw(any_float32),
            )
        )
    return request


@EXAMPLES
@given(request=_extreme_requests())
async def test_extreme_numbers_render_or_are_refused_naming_the_field(
    guarded: Guarded, request: gateway_pb2.GenerateRequest
) -> None:
    outcome = await collect(guarded.system.stub.Generate(request, timeout=60))
    variants = request.variants or 1
    _assert_result_or_refusal(
        outcome, variants, "variants", "seed", "sampler", "loras", "controlnet", "width", "height"
    )


def _bad_sampler_name(request: gateway_pb2.GenerateRequest) -> None:
    request.sampler.sampler_name = "../../etc/passwd"


def _bad_scheduler(request: gateway_pb2.GenerateRequest) -> None:
    request.sampler.scheduler = "nope"


def _overlong_approved_prompt(request: gateway_pb2.GenerateRequest) -> None:
    # Within the gateway's token budget (390 CLIP tokens: long one-token words), over the
    # render's character limit (4,940 of 4,000): only the render refuses it.
    prompt = "photography architectural beautifully " * 130
    request.plan.CopyFrom(common_pb2.PromptPlan(positive_prompt=prompt))


@pytest.mark.parametrize(
    ("spoil", "field"),
    [
        (_bad_sampler_name, "sampler.sampler_name"),
        (_bad_scheduler, "sampler.scheduler"),
        (_overlong_approved_prompt, "plan.positive_prompt"),
    ],
    ids=["sampler-name-via-planner", "scheduler-via-render", "approved-prompt-via-render"],
)
async def test_refusal_from_a_downstream_service_names_the_callers_field(
    guarded: Guarded, spoil: Callable[[gateway_pb2.GenerateRequest], None], field: str
) -> None:
    request = _img2img()
    spoil(request)
    outcome = await generate(guarded.system.stub, request, deadline_s=30)
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome.message
    assert _violated_fields(outcome) == {field}
