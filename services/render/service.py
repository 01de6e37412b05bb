"""The gRPC face of the render service: proto in, domain events out.

Errors are domain errors raised by the renderer (also mid-stream); the shared server
interceptor turns them into statuses with details. Cancellation reaches the renderer as
``CancelledError`` inside the ``async for``, where its ``finally`` withdraws the prompts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc.aio
from google.protobuf import json_format

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2, render_pb2_grpc
from services.common.errors import FieldViolation
from services.common.request_rules import check_enum, check_output_format, raise_if_any
from services.common.retry import deadline_from_context
from services.common.sampler import from_float32, overrides_from_proto, settings_to_proto
from services.render.catalog import RenderCatalog
from services.render.jobs import (
    ControlKind,
    ControlNetRequest,
    LoraRequest,
    RenderJob,
    RenderWarning,
)
from services.render.renderer import (
    Renderer,
    RenderEvent,
    VariantDone,
    VariantPreview,
    VariantProgress,
    VariantQueued,
)
from services.render.result_images import OutputFormat
from services.render.workflows import Mode

__all__ = [
    "SERVICE_NAME",
    "RenderServicer",
    "catalog_to_proto",
    "event_to_proto",
    "job_from_proto",
]

SERVICE_NAME: str = render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name

_EDIT_MODES = {
    "img2img": common_pb2.EDIT_MODE_IMG2IMG,
    "kontext": common_pb2.EDIT_MODE_KONTEXT,
    "inpaint": common_pb2.EDIT_MODE_INPAINT,
}
_MODES = {
    Mode.IMG2IMG: common_pb2.GENERATION_MODE_IMAGE_TO_IMAGE,
    Mode.TXT2IMG: common_pb2.GENERATION_MODE_TEXT_TO_IMAGE,
}

_CONTROL_KINDS = {
    common_pb2.CONTROL_TYPE_CANNY: ControlKind.CANNY,
    common_pb2.CONTROL_TYPE_DEPTH: ControlKind.DEPTH,
    common_pb2.CONTROL_TYPE_POSE: ControlKind.POSE,
    common_pb2.CONTROL_TYPE_TILE: ControlKind.TILE,
}

_OUTPUT_FORMATS = {
    common_pb2.OUTPUT_FORMAT_PNG: OutputFormat.PNG,
    common_pb2.OUTPUT_FORMAT_JPEG: OutputFormat.JPEG,
    common_pb2.OUTPUT_FORMAT_WEBP: OutputFormat.WEBP,
}


class RenderServicer(render_pb2_grpc.RenderServiceServicer):
    """``imagegen.render.v1.RenderService``.

    Args:
        renderer: The renderer shared by all calls.
    """

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer

    async def GetCatalog(
        self,
        request: render_pb2.GetCatalogRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> render_pb2.GetCatalogResponse:
        """The templates and what each backend lists (see the proto)."""
        return catalog_to_proto(await self._renderer.catalog())

    async def Render(
        self,
        request: render_pb2.RenderRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[render_pb2.RenderResponse]:
        """Renders the request's variants, streaming events (see the proto for statuses)."""
        job = job_from_proto(request)
        async for event in self._renderer.render(job, deadline=deadline_from_context(context)):
            yield event_to_proto(event)


def catalog_to_proto(catalog: RenderCatalog) -> render_pb2.GetCatalogResponse:
    """The wire form of the render catalog."""
    response = render_pb2.GetCatalogResponse(max_megapixels=catalog.max_megapixels)
    for entry in catalog.workflows:
        workflow = entry.workflow
        response.workflows.add(
            name=workflow.name,
            mode=_MODES[workflow.mode],
            description=workflow.description,
            parameters=sorted(workflow.bindings),
            output_size=entry.output_size,
            is_default=entry.is_default,
            models=[file for _, _, file in workflow.required_models],
        )
    for backend in catalog.backends:
        item = response.backends.add(
            name=backend.name, reachable=backend.offer is not None, error=backend.error
        )
        if backend.offer is not None:
            offer = backend.offer
            item.loras.extend(offer.loras)
            item.controlnets.extend(offer.controlnets)
            item.samplers.extend(offer.samplers)
            item.schedulers.extend(offer.schedulers)
            item.edit_modes.extend(_EDIT_MODES[m] for m in offer.edit_modes if m in _EDIT_MODES)
    kinds = {kind: type_ for type_, kind in _CONTROL_KINDS.items()}
    for kind, model in catalog.controlnet_defaults.items():
        response.controlnet_defaults.add(type=kinds[kind], model=model)
    return response


def _optional_float(message: Any, name: str) -> float | None:
    return from_float32(getattr(message, name)) if message.HasField(name) else None


def job_from_proto(request: render_pb2.RenderRequest) -> RenderJob:
    """The domain form of a request; unset optional fields become ``None``.

    Raises:
        InvalidArgumentError: An enum holds a number the contract does not define.
    """
    violations: list[FieldViolation] = []
    check_output_format(request.output_format, violations)
    controlnet = None
    if request.HasField("controlnet"):
        cn = request.controlnet
        check_enum(
            cn.type, common_pb2.ControlType, "controlnet.type", violations, unspecified_ok=True
        )
        controlnet = ControlNetRequest(
            kind=_CONTROL_KINDS.get(cn.type),
            strength=_optional_float(cn, "strength"),
            start_percent=_optional_float(cn, "start_percent"),
            end_percent=_optional_float(cn, "end_percent"),
            model=cn.model,
            control_image=cn.control_image.data if cn.HasField("control_image") else None,
        )
    raise_if_any(violations, "render request")
    provenance = (
        json_format.MessageToDict(request.provenance, preserving_proto_field_name=True)
        if request.HasField("provenance")
        else None
    )
    return RenderJob(
        positive_prompt=request.positive_prompt,
        negative_prompt=request.negative_prompt,
        source_image=request.source_image.data if request.HasField("source_image") else None,
        settings=overrides_from_proto(request.settings),
        seed=request.seed if request.HasField("seed") else None,
        variants=request.variants,
        width=request.width,
        height=request.height,
        loras=tuple(
            LoraRequest(lora.name, _optional_float(lora, "strength")) for lora in request.loras
        ),
        controlnet=controlnet,
        workflow=request.workflow,
        previews=request.previews,
        provenance=provenance,
        output_format=_OUTPUT_FORMATS.get(request.output_format, OutputFormat.PNG),
        output_quality=request.output_quality,
        scale=_optional_float(request, "scale"),
        mask=request.mask.data if request.HasField("mask") else None,
    )


def event_to_proto(event: RenderEvent) -> render_pb2.RenderResponse:
    """The wire form of a render event."""
    if isinstance(event, RenderWarning):
        return render_pb2.RenderResponse(
            warning=common_pb2.Warning(code=event.code, message=event.message)
        )
    if isinstance(event, VariantQueued):
        return render_pb2.RenderResponse(
            queued=common_pb2.RenderQueued(variant=event.variant, position=event.position)
        )
    if isinstance(event, VariantProgress):
        return render_pb2.RenderResponse(
            progress=common_pb2.RenderProgress(
                variant=event.variant, step=event.step, total_steps=event.total_steps
            )
        )
    if isinstance(event, VariantPreview):
        return render_pb2.RenderResponse(
            preview=common_pb2.Preview(
                variant=event.variant,
                step=event.step,
                image=common_pb2.Image(
                    data=event.image.data,
                    mime_type="image/jpeg",
                    width=event.image.width,
                    height=event.image.height,
                ),
            )
        )
    return render_pb2.RenderResponse(result=_result_to_proto(event))


def _result_to_proto(done: VariantDone) -> common_pb2.VariantResult:
    return common_pb2.VariantResult(
        index=done.index,
        seed=done.seed,
        image=common_pb2.Image(
            data=done.image.data,
            mime_type=done.image.mime_type,
            width=done.image.width,
            height=done.image.height,
        ),
        settings=settings_to_proto(done.settings),
        positive_prompt=done.positive,
        negative_prompt=done.negative,
        render_width=done.render_size.width,
        render_height=done.render_size.height,
        workflow=done.workflow,
        prompt_id=done.prompt_id,
        backend=done.backend,
    )
