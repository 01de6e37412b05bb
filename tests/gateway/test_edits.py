"""Edit modes end to end through the gateway: AUTO per model and mask, explicit modes,
the KONTEXT_UNAVAILABLE fallback, and masks checked before any model is asked."""

from __future__ import annotations

import io
import json
from contextlib import AsyncExitStack
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from PIL import Image

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import status_details
from services.render.result_metadata import PROVENANCE_KEY, read_metadata
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.images import png_bytes
from tests.gateway.system import PLAN_ANSWER, System, start_system

KONTEXT_MODEL = "flux1-dev-kontext_fp8_scaled.safetensors"
INSTRUCTION = "Перекрась чашку в тёмно-зелёный цвет"
EDIT_INSTRUCTION = "Make the cup dark green. Keep the saucer, the table and the light unchanged."


def _mask(width: int = 120, height: int = 80) -> bytes:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (30, 20, 90, 60))
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


def _edit(**fields: Any) -> gateway_pb2.GenerateRequest:
    return gateway_pb2.GenerateRequest(
        instruction=INSTRUCTION,
        source_image=common_pb2.Image(data=png_bytes(120, 80)),
        sampler=common_pb2.SamplerSettings(steps=4),
        **fields,
    )


async def _system(stack: AsyncExitStack, *, kontext: bool) -> System:
    comfyui = FakeComfyUISettings(
        step_delay_s=0.0, diffusion_models=[KONTEXT_MODEL] if kontext else []
    )
    system = await start_system(stack, comfyui=comfyui)
    system.ollama.fake.script.always(
        PLAN_ANSWER | {"edit_instruction": EDIT_INSTRUCTION}, model="gpt-oss:20b"
    )
    return system


async def _run(system: System, request: gateway_pb2.GenerateRequest) -> dict[str, Any]:
    events = [e async for e in system.stub.Generate(request, timeout=30)]
    (result,) = [e.result for e in events if e.HasField("result")]
    accepted = [s.body["prompt"] for s in system.comfyui.fake.submitted if s.status == 200]
    return {
        "warnings": [e.warning.code for e in events if e.HasField("warning")],
        "record": json.loads(read_metadata(result.image.data)[PROVENANCE_KEY]),
        "graph_types": {n["class_type"] for n in accepted[-1].values()},
        "submitted": len(system.comfyui.fake.submitted),
    }


async def test_auto_with_the_kontext_model_edits_with_kontext_from_the_instruction() -> None:
    async with AsyncExitStack() as stack:
        system = await _system(stack, kontext=True)
        run = await _run(system, _edit())
    assert run["record"]["workflow"] == "flux-kontext-edit"
    assert run["record"]["positive_prompt"] == EDIT_INSTRUCTION
    assert run["record"]["provenance"]["edit_mode"] == "EDIT_MODE_KONTEXT"
    assert "ReferenceLatent" in run["graph_types"]
    assert "KONTEXT_UNAVAILABLE" not in run["warnings"]


async def test_the_callers_own_prompt_wins_over_the_kontext_instruction() -> None:
    async with AsyncExitStack() as stack:
        system = await _system(stack, kontext=True)
        run = await _run(system, _edit(prompt="Paint the cup emerald. Keep the rest."))
    assert run["record"]["workflow"] == "flux-kontext-edit"
    assert run["record"]["positive_prompt"] == "Paint the cup emerald. Keep the rest."


async def test_auto_without_kontext_goes_to_img2img_with_a_warning() -> None:
    async with AsyncExitStack() as stack:
        system = await _system(stack, kontext=False)
        run = await _run(system, _edit())
    # The discovery catalog says no backend has Kontext: nothing is tried in vain.
    assert run["submitted"] == 1
    assert run["warnings"].count("KONTEXT_UNAVAILABLE") == 1
    assert run["record"]["workflow"] == "flux-img2img"
    assert run["record"]["positive_prompt"] == PLAN_ANSWER["positive_prompt"]
    assert run["record"]["settings"]["denoise"] == PLAN_ANSWER["denoise"]


async def test_a_kontext_model_gone_since_discovery_falls_back_once_and_is_remembered() -> None:
    async with AsyncExitStack() as stack:
        system = await _system(stack, kontext=True)
        await _run(system, _edit())  # the catalog is read: Kontext listed
        system.comfyui.fake.set_model_files(diffusion_models=[])
        first = await _run(system, _edit())
        second = await _run(system, _edit())
    for run in (first, second):
        assert run["warnings"].count("KONTEXT_UNAVAILABLE") == 1
        assert run["record"]["workflow"] == "flux-img2img"
    # The refusal came before anything was queued, and was remembered for the next one.
    assert second["submitted"] - first["submitted"] == 1


async def test_auto_without_kontext_but_with_a_mask_inpaints_and_keeps_the_rest() -> None:
    async with AsyncExitStack() as stack:
        system = await _system(stack, kontext=False)
        run = await _run(system, _edit(mask=common_pb2.Image(data=_mask())))
    assert run["warnings"].count("KONTEXT_UNAVAILABLE") == 1
    assert run["record"]["workflow"] == "flux-inpaint"
    assert run["record"]["edit"]["mode"] == "inpaint"
    assert run["record"]["edit"]["kept_outside_mask"] is True
    assert run["record"]["provenance"]["mask_sha256"] == run["record"]["edit"]["mask_sha256"]
    assert {"InpaintModelConditioning", "DifferentialDiffusion"} <= run["graph_types"]


async def test_an_explicit_img2img_is_honoured_even_with_the_kontext_model() -> None:
    async with AsyncExitStack() as stack:
        system = await _system(stack, kontext=True)
        run = await _run(system, _edit(edit_mode=common_pb2.EDIT_MODE_IMG2IMG))
    assert run["record"]["workflow"] == "flux-img2img"
    assert "KONTEXT_UNAVAILABLE" not in run["warnings"]


async def _refusal(system: System, request: gateway_pb2.GenerateRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        [e async for e in system.stub.Generate(request, timeout=30)]
    return raised.value


def _fields(error: grpc.aio.AioRpcError) -> list[str]:
    (bad,) = [d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)]
    return [v.field for v in bad.field_violations]


async def test_an_explicit_kontext_without_the_model_fails_naming_the_model() -> None:
    async with AsyncExitStack() as stack:
        system = await _system(stack, kontext=False)
        error = await _refusal(system, _edit(edit_mode=common_pb2.EDIT_MODE_KONTEXT))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert KONTEXT_MODEL in (error.details() or "")


async def test_inpaint_without_a_mask_is_invalid_naming_the_mask(system: System) -> None:
    error = await _refusal(system, _edit(edit_mode=common_pb2.EDIT_MODE_INPAINT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["mask"]
    assert system.ollama_chats("") == 0


async def test_a_mask_of_the_wrong_size_is_invalid_before_any_model_is_asked(
    system: System,
) -> None:
    error = await _refusal(system, _edit(mask=common_pb2.Image(data=_mask(121, 80))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["mask.data"]
    assert "121×80" in (error.details() or "")
    assert system.ollama_chats("") == 0
    assert system.comfyui.fake.submitted == []
