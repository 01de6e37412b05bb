"""GetCapabilities, and every name of a request checked against it before any model runs."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import status_details
from tests.gateway.images import jpeg_bytes
from tests.gateway.system import System, start_system, stop_host


def _request(**fields: object) -> gateway_pb2.GenerateRequest:
    return gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=jpeg_bytes(96, 64)),
        instruction="make the cup green",
        **fields,  # type: ignore[arg-type]
    )


async def _refusal(system: System, request: gateway_pb2.GenerateRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in system.stub.Generate(request, timeout=30):
            pass
    return raised.value


def _precondition(
    error: grpc.aio.AioRpcError,
) -> tuple[str, list[error_details_pb2.PreconditionFailure.Violation]]:
    details = status_details(error)
    (info,) = [d for d in details if isinstance(d, error_details_pb2.ErrorInfo)]
    (failure,) = [d for d in details if isinstance(d, error_details_pb2.PreconditionFailure)]
    return info.reason, list(failure.violations)


async def test_capabilities_list_workflows_models_limits_and_language_models(
    system: System,
) -> None:
    caps = await system.stub.GetCapabilities(gateway_pb2.GetCapabilitiesRequest(), timeout=10)
    workflows = {w.name: w for w in caps.workflows}
    img2img, txt2img = workflows["flux-img2img"], workflows["flux-txt2img"]
    assert img2img.mode == common_pb2.GENERATION_MODE_IMAGE_TO_IMAGE and img2img.is_default
    assert (img2img.output_size, txt2img.output_size) == ("source", "requested")
    assert "denoise" in img2img.parameters and "image" not in txt2img.parameters
    assert "flux-realism-lora.safetensors" in caps.loras
    assert "flux-union-controlnet-pro.safetensors" in caps.controlnet_models
    assert "euler" in caps.samplers and "simple" in caps.schedulers
    canny = next(c for c in caps.controlnets if c.type == common_pb2.CONTROL_TYPE_CANNY)
    assert canny.default_model and canny.available
    (backend,) = caps.render_backends
    assert backend.reachable and list(backend.edit_modes) == [
        common_pb2.EDIT_MODE_IMG2IMG,
        common_pb2.EDIT_MODE_INPAINT,
    ]  # the stand-in has no Kontext model
    assert caps.limits.max_variants == 8 and caps.limits.max_megapixels > 0
    assert caps.limits.max_image_side == 4096 and caps.limits.max_loras == 4
    models = {m.service: m for m in caps.language_models}
    assert models["vision"].model == "llava" and models["vision"].backend == "ollama"
    assert models["planner"].model == "gpt-oss:20b"
    assert {m.state for m in models.values()} <= {"ready", "unknown"}


async def test_capabilities_report_an_unreachable_language_service(
    exit_stack: AsyncExitStack,
) -> None:
    system = await start_system(exit_stack)
    await stop_host(system.hosts["planner"])
    caps = await system.stub.GetCapabilities(
        gateway_pb2.GetCapabilitiesRequest(refresh=True), timeout=10
    )
    planner = next(m for m in caps.language_models if m.service == "planner")
    assert planner.state == "unreachable" and "planner service did not answer" in planner.reason
    assert caps.workflows


async def test_unknown_controlnet_is_refused_before_any_model_call(system: System) -> None:
    request = _request(
        controlnet=common_pb2.ControlNetSpec(
            type=common_pb2.CONTROL_TYPE_CANNY, model="nowhere-controlnet.safetensors"
        )
    )
    error = await _refusal(system, request)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, violations = _precondition(error)
    assert reason == "CONTROLNET_NOT_FOUND"
    assert [(v.type, v.subject) for v in violations] == [
        ("CONTROLNET", "nowhere-controlnet.safetensors")
    ]
    assert "flux-union-controlnet-pro.safetensors" in violations[0].description
    assert system.ollama.fake.requests_to("/api/chat") == []
    assert system.comfyui.fake.submitted == []


async def test_unknown_workflow_is_refused_before_any_model_call(system: System) -> None:
    error = await _refusal(system, _request(workflow="flux-nothing"))
    reason, violations = _precondition(error)
    assert (error.code(), reason) == (grpc.StatusCode.FAILED_PRECONDITION, "WORKFLOW_NOT_FOUND")
    assert violations[0].subject == "flux-nothing" and "flux-img2img" in violations[0].description
    assert system.ollama.fake.requests_to("/api/chat") == []


async def test_unknown_sampler_and_scheduler_name_their_fields_before_any_model_call(
    system: System,
) -> None:
    request = _request(sampler=common_pb2.SamplerSettings(sampler_name="warp", scheduler="someday"))
    error = await _refusal(system, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad_request,) = [
        d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)
    ]
    violations = {v.field: v.description for v in bad_request.field_violations}
    assert set(violations) == {"sampler.sampler_name", "sampler.scheduler"}
    assert "euler" in violations["sampler.sampler_name"]
    assert "simple" in violations["sampler.scheduler"]
    assert system.ollama.fake.requests_to("/api/chat") == []


async def test_unknown_scheduler_in_an_approved_plan_names_the_plan_field(
    system: System,
) -> None:
    plan = common_pb2.PromptPlan(
        positive_prompt="a green cup", settings=common_pb2.SamplerSettings(scheduler="someday")
    )
    error = await _refusal(system, _request(plan=plan))
    (bad_request,) = [
        d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)
    ]
    assert [v.field for v in bad_request.field_violations] == ["plan.settings.scheduler"]


async def test_known_names_pass_the_check(system: System) -> None:
    request = _request(
        seed=1,
        loras=[common_pb2.LoraSpec(name="flux-realism-lora.safetensors")],
        sampler=common_pb2.SamplerSettings(sampler_name="euler", scheduler="simple"),
    )
    events = [e async for e in system.stub.Generate(request, timeout=30)]
    assert events[-1].HasField("completed")


async def test_a_lora_added_after_the_cache_was_filled_is_found(system: System) -> None:
    await system.stub.GetCapabilities(gateway_pb2.GetCapabilitiesRequest(), timeout=10)
    await asyncio.sleep(1.1)  # the cached answer is now old enough to be looked at again
    loras = [*system.comfyui.fake.settings.loras, "new-lora.safetensors"]
    system.comfyui.fake.set_model_files(loras=loras)
    request = _request(seed=1, loras=[common_pb2.LoraSpec(name="new-lora.safetensors")])
    events = [e async for e in system.stub.Generate(request, timeout=30)]
    assert events[-1].HasField("completed")


async def test_stale_capabilities_serve_while_render_cannot_be_asked(
    exit_stack: AsyncExitStack,
) -> None:
    system = await start_system(exit_stack, capabilities_ttl_s=0.0)
    first = await system.stub.GetCapabilities(gateway_pb2.GetCapabilitiesRequest(), timeout=10)
    await stop_host(system.hosts["render"])
    again = await system.stub.GetCapabilities(gateway_pb2.GetCapabilitiesRequest(), timeout=10)
    assert [w.name for w in again.workflows] == [w.name for w in first.workflows]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await system.stub.GetCapabilities(
            gateway_pb2.GetCapabilitiesRequest(refresh=True), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (raised.value.details() or "").startswith("render service")
