"""Checks a caller's request before any backend is touched.

Every problem found is collected, so one ``INVALID_ARGUMENT`` answer lists all the bad
fields (``google.rpc.BadRequest``) instead of making the caller fix them one by one.
Image decoding is CPU-bound: a handler calls these through :func:`validated`, which moves
the work to a worker thread when the request carries an image.

The rules are the render service's own (:mod:`services.common.request_rules`,
:mod:`services.common.sampler`) with the same shared limits, so nothing the render would
refuse gets past here to cost an analysis and a plan first. Values a downstream service
clamps with a warning (LoRA strength, planned sampler overrides out of range) are let
through; values nothing could use (NaN, an empty name, a ControlNet with nothing to
follow, an enum number the contract lacks) are refused here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.caller_prompts import check_caller_prompts
from gateway.jobs import GenerateJob, Mode, PlanInputs
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import FieldViolation, InvalidArgumentError
from services.common.images import (
    MIN_SOURCE_SIDE,
    ValidatedImage,
    ValidatedMask,
    validate_image,
    validate_mask,
)
from services.common.prompts import DEFAULT_PROMPT_TOKEN_BUDGET
from services.common.request_rules import (
    ControlNetValues,
    check_controlnet,
    check_enum,
    check_loras,
    check_output_format,
    check_output_quality,
    check_scale,
    check_txt2img_side,
    check_variants,
    check_workflow_name,
    raise_if_any,
)
from services.common.sampler import check_overrides, overrides_from_proto

__all__ = [
    "RequestLimits",
    "checked_in_a_thread",
    "validate_generate",
    "validate_plan",
    "validated",
]

_Request = TypeVar("_Request", gateway_pb2.GenerateRequest, gateway_pb2.PlanRequest)
_Checked = TypeVar("_Checked")


@dataclass(frozen=True)
class RequestLimits:
    """The bounds a request must stay within.

    Attributes:
        max_variants: Most variants per request (shared with render).
        max_instruction_chars: Longest instruction and description.
        max_loras: Most LoRAs per request (shared with render).
        max_image_bytes: Largest encoded image.
        max_image_side: Largest image width or height.
        txt2img_min_side: Smallest text-to-image side (shared with render).
        txt2img_max_side: Largest text-to-image side (shared with render).
        prompt_token_budget: Most CLIP tokens in a caller's prompt.
    """

    max_variants: int = 8
    max_instruction_chars: int = 65536
    max_loras: int = 4
    max_image_bytes: int = 32 * 1024 * 1024
    max_image_side: int = 4096
    txt2img_min_side: int = 256
    txt2img_max_side: int = 2048
    prompt_token_budget: int = DEFAULT_PROMPT_TOKEN_BUDGET


def checked_in_a_thread(request: gateway_pb2.GenerateRequest | gateway_pb2.PlanRequest) -> bool:
    """Whether validating ``request`` takes long enough to leave the event loop: it decodes
    an image (a source, a mask, a control image) or cleans a caller's prompt (up to the
    instruction limit of text, tokenised to fit the CLIP budget)."""
    if request.HasField("source_image"):
        return True
    if isinstance(request, gateway_pb2.GenerateRequest):
        return (
            request.HasField("mask")
            or request.controlnet.HasField("control_image")
            or request.HasField("prompt")
            or request.HasField("negative_prompt")
            or request.HasField("plan")
        )
    return False


async def validated(
    check: Callable[[_Request, RequestLimits], _Checked], request: _Request, limits: RequestLimits
) -> _Checked:
    """Runs ``check`` (:func:`validate_generate`, :func:`validate_plan`) on ``request``.

    A request whose check decodes an image or cleans a prompt is checked in a worker
    thread, so neither holds the event loop (and every other caller's stream) for up to
    a fraction of a second; any other is checked at once, in microseconds, where the
    trip to a thread and back would cost more than the check.

    Raises:
        InvalidArgumentError: As ``check`` does.
    """
    if checked_in_a_thread(request):
        return await asyncio.to_thread(check, request, limits)
    return check(request, limits)


def validate_generate(request: gateway_pb2.GenerateRequest, limits: RequestLimits) -> GenerateJob:
    """Checks a ``Generate`` request and returns what it asks for.

    Args:
        request: The request as received.
        limits: The configured bounds.

    Returns:
        The validated job.

    Raises:
        InvalidArgumentError: One violation per bad field.
    """
    violations: list[FieldViolation] = []
    image = _check_image(request, "source_image", limits, violations)
    mode = Mode.IMAGE_TO_IMAGE if request.HasField("source_image") else Mode.TEXT_TO_IMAGE
    _check_text(request.instruction, "instruction", limits, violations, if_blank=_REQUIRED)
    description = _check_description(request, limits, violations)
    # Planned overrides are clamped by the planner; over an approved plan they reach the
    # render service as they are, so they must be within what it accepts.
    check_overrides(
        overrides_from_proto(request.sampler),
        "sampler",
        violations,
        bounded=request.HasField("plan"),
    )

    seed = request.seed if request.HasField("seed") else None
    variants = check_variants(request.variants, seed, limits.max_variants, violations)
    if mode is Mode.TEXT_TO_IMAGE:
        # Image-to-image ignores both (the render warns), so only text-to-image checks them.
        for name in ("width", "height"):
            check_txt2img_side(
                name,
                getattr(request, name),
                limits.txt2img_min_side,
                limits.txt2img_max_side,
                violations,
            )
    check_loras(
        [
            (lora.name, lora.strength if lora.HasField("strength") else None)
            for lora in request.loras
        ],
        limits.max_loras,
        violations,
    )
    controlnet = _check_controlnet(request, mode, limits, violations)
    if request.workflow:
        check_workflow_name(request.workflow, "workflow", violations)
    _check_approved_plan(request, violations)
    for name in ("prompt", "negative_prompt"):
        if request.HasField(name):
            _check_text(getattr(request, name), name, limits, violations, if_blank=None)
    caller_prompts, approved_plan = check_caller_prompts(
        request, budget=limits.prompt_token_budget, violations=violations
    )
    check_output_format(request.output_format, violations)
    check_output_quality(request.output_quality, violations)
    scale = request.scale if request.HasField("scale") else None
    if scale is not None:
        check_scale(scale, violations)
    mask = _check_edit(request, image, limits, violations)

    raise_if_any(violations, "request")
    return GenerateJob(
        inputs=PlanInputs(
            mode=mode,
            instruction=request.instruction,
            image=image,
            description=description,
            overrides=request.sampler,
        ),
        seed=seed,
        variants=variants,
        width=request.width,
        height=request.height,
        loras=tuple(request.loras),
        controlnet=controlnet,
        workflow=request.workflow,
        previews=request.previews,
        approved_plan=approved_plan,
        caller_prompts=caller_prompts,
        output_format=request.output_format,
        output_quality=request.output_quality,
        scale=scale,
        edit_mode=request.edit_mode,
        mask=mask,
    )


def validate_plan(request: gateway_pb2.PlanRequest, limits: RequestLimits) -> PlanInputs:
    """Checks a ``Plan`` request and returns the planning inputs.

    Args:
        request: The request as received.
        limits: The configured bounds.

    Returns:
        The validated inputs.

    Raises:
        InvalidArgumentError: One violation per bad field.
    """
    violations: list[FieldViolation] = []
    image = _check_image(request, "source_image", limits, violations)
    _check_text(request.instruction, "instruction", limits, violations, if_blank=_REQUIRED)
    description = _check_description(request, limits, violations)
    check_overrides(overrides_from_proto(request.sampler), "sampler", violations, bounded=False)
    raise_if_any(violations, "request")
    return PlanInputs(
        mode=Mode.IMAGE_TO_IMAGE if request.HasField("source_image") else Mode.TEXT_TO_IMAGE,
        instruction=request.instruction,
        image=image,
        description=description,
        overrides=request.sampler,
    )


def _check_image(
    request: gateway_pb2.GenerateRequest | gateway_pb2.PlanRequest,
    field: str,
    limits: RequestLimits,
    violations: list[FieldViolation],
) -> ValidatedImage | None:
    if not request.HasField(field):
        return None
    image: common_pb2.Image = getattr(request, field)
    return _image_or_violation(
        image.data, f"{field}.data", limits, violations, min_side=MIN_SOURCE_SIDE
    )


def _image_or_violation(
    data: bytes,
    field: str,
    limits: RequestLimits,
    violations: list[FieldViolation],
    *,
    min_side: int = 1,
) -> ValidatedImage | None:
    try:
        return validate_image(
            data,
            field=field,
            max_bytes=limits.max_image_bytes,
            max_side=limits.max_image_side,
            min_side=min_side,
        )
    except InvalidArgumentError as e:
        violations.extend(e.violations)
        return None


_REQUIRED = "is required and must not be blank"
_BLANK_DESCRIPTION = (
    "is set but blank; describe the image, or leave the field unset to have the vision "
    "model describe it"
)


def _check_text(
    text: str,
    field: str,
    limits: RequestLimits,
    violations: list[FieldViolation],
    *,
    if_blank: str | None,
) -> None:
    """Checks a text's length; ``if_blank`` is the complaint about a blank one (None:
    blank is fine)."""
    if if_blank is not None and not text.strip():
        violations.append(FieldViolation(field, if_blank))
    elif len(text) > limits.max_instruction_chars:
        violations.append(
            FieldViolation(
                field,
                f"is {len(text)} characters; at most {limits.max_instruction_chars}",
            )
        )


def _check_description(
    request: gateway_pb2.GenerateRequest | gateway_pb2.PlanRequest,
    limits: RequestLimits,
    violations: list[FieldViolation],
) -> str | None:
    if not request.HasField("description"):
        return None
    # A present but blank description would silently replace the analysis with nothing.
    _check_text(request.description, "description", limits, violations, if_blank=_BLANK_DESCRIPTION)
    return request.description


def _check_controlnet(
    request: gateway_pb2.GenerateRequest,
    mode: Mode,
    limits: RequestLimits,
    violations: list[FieldViolation],
) -> common_pb2.ControlNetSpec | None:
    if not request.HasField("controlnet"):
        return None
    spec = request.controlnet
    check_enum(spec.type, common_pb2.ControlType, "controlnet.type", violations)
    check_controlnet(
        ControlNetValues(
            spec.strength if spec.HasField("strength") else None,
            spec.start_percent if spec.HasField("start_percent") else None,
            spec.end_percent if spec.HasField("end_percent") else None,
        ),
        model=spec.model,
        has_control_image=spec.HasField("control_image"),
        text_to_image=mode is Mode.TEXT_TO_IMAGE,
        violations=violations,
    )
    if spec.HasField("control_image"):
        _image_or_violation(
            spec.control_image.data, "controlnet.control_image.data", limits, violations
        )
    return spec


def _check_edit(
    request: gateway_pb2.GenerateRequest,
    image: ValidatedImage | None,
    limits: RequestLimits,
    violations: list[FieldViolation],
) -> ValidatedMask | None:
    """The edit mode and the mask: a mask needs a source of its size, INPAINT a mask."""
    check_enum(request.edit_mode, common_pb2.EditMode, "edit_mode", violations, unspecified_ok=True)
    explicit = request.edit_mode not in (
        common_pb2.EDIT_MODE_UNSPECIFIED,
        common_pb2.EDIT_MODE_AUTO,
    )
    if explicit and not request.HasField("source_image"):
        violations.append(
            FieldViolation("edit_mode", "applies to image-to-image only; send a source_image")
        )
    if request.edit_mode == common_pb2.EDIT_MODE_INPAINT and not request.HasField("mask"):
        violations.append(
            FieldViolation("mask", "is required for EDIT_MODE_INPAINT (white = change)")
        )
    if not request.HasField("mask") or (request.HasField("source_image") and image is None):
        return None  # no mask, or a bad source already reported
    try:
        return validate_mask(
            request.mask.data,
            field="mask.data",
            source=image,
            max_bytes=limits.max_image_bytes,
            max_side=limits.max_image_side,
        )
    except InvalidArgumentError as e:
        violations.extend(e.violations)
        return None


def _check_approved_plan(
    request: gateway_pb2.GenerateRequest, violations: list[FieldViolation]
) -> None:
    # Its prompts are cleaned with the overrides (gateway.caller_prompts).
    if not request.HasField("plan"):
        return
    plan = request.plan
    # An unrecognised intent is sent as UNSPECIFIED (the planner does so itself).
    check_enum(plan.intent, common_pb2.EditIntent, "plan.intent", violations, unspecified_ok=True)
    check_overrides(overrides_from_proto(plan.settings), "plan.settings", violations, bounded=True)
