"""Generate end to end: real gRPC channels, the real services, the backend stand-ins."""

from __future__ import annotations

import hashlib
import io
import json
from contextlib import AsyncExitStack
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from PIL import Image

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import status_details
from services.render.result_metadata import PROVENANCE_KEY, read_text_chunks
from standins.comfyui.settings import FakeComfyUISettings
from standins.ollama.settings import FakeOllamaSettings
from tests.gateway.images import jpeg_bytes, png_bytes
from tests.gateway.system import System, start_system, stop_host

INSTRUCTION = "Перекрась чашку в тёмно-зелёный цвет, сохрани блюдце и стол"


async def _collect(
    system: System, request: gateway_pb2.GenerateRequest
) -> list[gateway_pb2.GenerateResponse]:
    return [event async for event in system.stub.Generate(request, timeout=30)]


def _kinds(events: list[gateway_pb2.GenerateResponse]) -> list[str]:
    return [str(e.WhichOneof("event")) for e in events]


def _results(events: list[gateway_pb2.GenerateResponse]) -> list[common_pb2.VariantResult]:
    return [e.result for e in events if e.HasField("result")]


def _only(events: list[gateway_pb2.GenerateResponse], kind: str) -> Any:
    """The payload of the one event of ``kind``."""
    (payload,) = [getattr(e, kind) for e in events if e.WhichOneof("event") == kind]
    return payload


def _as_dict(message: Message) -> dict[str, object]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _img2img(variants: int = 1, **fields: object) -> gateway_pb2.GenerateRequest:
    values: dict[str, object] = {"instruction": INSTRUCTION, "variants": variants} | fields
    return gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=jpeg_bytes(120, 80)),
        **values,  # type: ignore[arg-type]
    )


async def test_img2img_streams_accepted_stages_analysis_plan_renders_then_completed(
    system: System,
) -> None:
    events = await _collect(system, _img2img(3, seed=1000))
    kinds = [k for k in _kinds(events) if k not in ("warning", "heartbeat")]
    assert kinds[:6] == ["accepted", "stage", "analysis", "stage", "plan", "stage"]
    assert set(kinds[6:-1]) <= {"queued", "progress", "result"}
    assert kinds.count("result") == 3
    assert kinds[-1] == "completed"
    stages = [(e.stage.stage, e.stage.model, e.stage.cached) for e in events if e.HasField("stage")]
    assert stages == [
        ("analysis", "llava", False),
        ("plan", "gpt-oss:20b", False),
        ("render", "", False),
    ]


async def test_accepted_is_first_and_matches_completed(system: System) -> None:
    call = system.stub.Generate(_img2img(2, seed=9), timeout=30)
    initial = dict(await call.initial_metadata())
    events = [event async for event in call]
    accepted, completed = events[0].accepted, events[-1].completed
    assert events[0].HasField("accepted")
    assert accepted.request_id == completed.request_id == initial["x-request-id"]
    assert (accepted.seed, accepted.variants) == (9, 2)
    assert accepted.mode == common_pb2.GENERATION_MODE_IMAGE_TO_IMAGE
    assert accepted.workflow == "flux-img2img"


async def test_reused_analysis_and_plan_are_cached_stages(system: System) -> None:
    await _collect(system, _img2img(seed=1))
    events = await _collect(system, _img2img(seed=1))
    stages = [(e.stage.stage, e.stage.cached) for e in events if e.HasField("stage")]
    assert stages == [("analysis", True), ("plan", True), ("render", False)]


async def test_heartbeats_repeat_while_a_model_call_runs(exit_stack: AsyncExitStack) -> None:
    system = await start_system(
        exit_stack,
        ollama=FakeOllamaSettings(load_delay_s=0.5),
        heartbeat_interval_s=0.1,
    )
    events = await _collect(system, _img2img(seed=3))
    beats = [e.heartbeat for e in events if e.HasField("heartbeat")]
    assert {b.stage for b in beats} == {"analysis", "plan"}
    analysis_beats = [b.elapsed_millis for b in beats if b.stage == "analysis"]
    assert analysis_beats == sorted(analysis_beats) and analysis_beats[0] >= 100.0
    kinds = _kinds(events)
    assert kinds.index("heartbeat") > kinds.index("stage")
    assert max(i for i, k in enumerate(kinds) if k == "heartbeat") < kinds.index("result")


async def test_img2img_variants_use_consecutive_seeds(system: System) -> None:
    results = _results(await _collect(system, _img2img(3, seed=1000)))
    assert sorted(r.seed for r in results) == [1000, 1001, 1002]
    assert sorted(r.index for r in results) == [0, 1, 2]


async def test_img2img_results_are_pngs_of_the_source_size(system: System) -> None:
    for result in _results(await _collect(system, _img2img(3, seed=5))):
        image = Image.open(io.BytesIO(result.image.data))
        assert (image.format, image.size) == ("PNG", (120, 80))


async def test_results_stream_as_each_variant_finishes(exit_stack: AsyncExitStack) -> None:
    # Steps take a moment, so variant 0 is delivered while variant 2 still samples.
    system = await start_system(exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.01))
    events = await _collect(system, _img2img(3, seed=5))
    first_result = next(i for i, e in enumerate(events) if e.HasField("result"))
    later_progress = [e.progress.variant for e in events[first_result:] if e.HasField("progress")]
    assert later_progress, "a result came only after every variant had sampled"


async def test_completed_reports_every_stage_timing(system: System) -> None:
    completed = (await _collect(system, _img2img(2, seed=5)))[-1].completed
    stages = [t.stage for t in completed.timings]
    assert stages == ["validate", "analyze", "plan", "render_wait", "render", "total"]
    assert (completed.seed, completed.variants) == (5, 2)


async def test_seed_chosen_by_the_gateway_is_reported(system: System) -> None:
    events = await _collect(system, _img2img(2))
    seed = events[-1].completed.seed
    assert sorted(r.seed for r in _results(events)) == [seed, seed + 1]


async def test_one_analysis_and_one_plan_serve_every_variant(system: System) -> None:
    await _collect(system, _img2img(3, seed=1))
    assert system.ollama_chats("llava") >= 1
    vision_calls, planner_calls = system.ollama_chats("llava"), system.ollama_chats("gpt-oss")
    await _collect(system, _img2img(3, seed=1, instruction="сделай чашку красной"))
    # The second request (another instruction) costs one more plan, and the image's
    # analysis comes from the vision service's own cache: no further vision call.
    assert system.ollama_chats("gpt-oss") == 2 * planner_calls
    assert system.ollama_chats("llava") == vision_calls


async def test_txt2img_renders_the_requested_size_without_analysis(system: System) -> None:
    request = gateway_pb2.GenerateRequest(
        instruction="a red fox in the snow", width=256, height=320, seed=3
    )
    events = await _collect(system, request)
    assert "analysis" not in _kinds(events)
    (result,) = _results(events)
    assert Image.open(io.BytesIO(result.image.data)).size == (256, 320)
    assert system.ollama_chats("llava") == 0


async def test_description_skips_the_vision_model(system: System) -> None:
    events = await _collect(system, _img2img(description="a white cup on a saucer"))
    analysis = _only(events, "analysis").analysis
    assert analysis.source == common_pb2.ANALYSIS_SOURCE_USER
    assert analysis.description == "a white cup on a saucer"
    assert system.ollama_chats("llava") == 0
    assert len(_results(events)) == 1


async def test_result_png_carries_the_whole_provenance(system: System) -> None:
    source = jpeg_bytes(120, 80)
    request = _img2img(seed=77)
    events = await _collect(system, request)
    (result,) = _results(events)
    record = json.loads(read_text_chunks(result.image.data)[PROVENANCE_KEY])
    provenance = record["provenance"]
    assert record["seed"] == 77
    assert record["resize"]["output"] == {"width": 120, "height": 80}
    assert provenance["source_sha256"] == hashlib.sha256(source).hexdigest()
    assert provenance["instruction"] == INSTRUCTION
    assert provenance["analysis"] == _as_dict(_only(events, "analysis").analysis)
    assert provenance["analysis"]["source"] == "ANALYSIS_SOURCE_MODEL"
    assert provenance["plan"] == _as_dict(_only(events, "plan").plan)
    assert provenance["plan"]["model"] and provenance["plan"]["intent"]
    assert provenance["request_id"] == events[-1].completed.request_id


async def test_identical_request_reuses_analysis_and_plan_without_model_calls(
    system: System,
) -> None:
    await _collect(system, _img2img(seed=1))
    chats = len(system.ollama.fake.requests_to("/api/chat"))
    events = await _collect(system, _img2img(2, seed=2))
    assert _only(events, "analysis").reused and _only(events, "plan").reused
    assert len(system.ollama.fake.requests_to("/api/chat")) == chats
    assert len(_results(events)) == 2


async def test_requested_size_is_ignored_for_img2img_with_a_warning(system: System) -> None:
    events = await _collect(system, _img2img(width=512, height=512))
    codes = [e.warning.code for e in events if e.HasField("warning")]
    assert "DIMENSIONS_IGNORED" in codes
    (result,) = _results(events)
    assert (result.image.width, result.image.height) == (120, 80)


async def test_invalid_request_names_the_field_and_touches_no_backend(system: System) -> None:
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=b"not an image"), instruction="", variants=99
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _collect(system, request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad_request,) = status_details(raised.value)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    fields = [v.field for v in bad_request.field_violations]
    assert fields == ["source_image.data", "instruction", "variants"]
    assert system.ollama.fake.requests_to("/api/chat") == []
    assert system.comfyui.fake.submitted == []


async def test_unknown_lora_is_refused_before_any_model_as_the_render_service_would(
    system: System,
) -> None:
    request = _img2img(loras=[common_pb2.LoraSpec(name="missing.safetensors")])
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _collect(system, request)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = status_details(raised.value)
    (info,) = [d for d in details if isinstance(d, error_details_pb2.ErrorInfo)]
    assert info.reason == "LORA_NOT_FOUND"
    (failure,) = [d for d in details if isinstance(d, error_details_pb2.PreconditionFailure)]
    (violation,) = failure.violations
    assert (violation.type, violation.subject) == ("LORA", "missing.safetensors")
    assert "flux-realism-lora.safetensors" in violation.description
    assert system.ollama.fake.requests_to("/api/chat") == []
    assert system.comfyui.fake.submitted == []


async def test_render_service_down_is_unavailable_naming_it(
    exit_stack: AsyncExitStack,
) -> None:
    system = await start_system(exit_stack)
    await stop_host(system.hosts["render"])
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _collect(system, _img2img())
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    info = [d for d in status_details(raised.value) if isinstance(d, error_details_pb2.ErrorInfo)]
    assert info and info[0].metadata["backend"] == "render"


async def test_png_input_is_accepted_as_well_as_jpeg(system: System) -> None:
    request = _img2img()
    request.source_image.data = png_bytes(96, 64)
    (result,) = _results(await _collect(system, request))
    assert (result.image.width, result.image.height) == (96, 64)
