"""Checks a caller's request before any backend is touched.

Every problem found is collected, so one ``INVALID_ARGUMENT`` answer lists all the bad
fields (``google.rpc.BadRequest``) instead of making the caller fix them one by one.
Image decoding is CPU-bound: call these through ``asyncio.to_thread`` from a handler.

Values a downstream service clamps with a warning (LoRA strength, sampler overrides out
of range) are let through; values nothing could use (NaN, an empty name, a ControlNet
with nothing to follow) are refused here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.jobs import GenerateJob, Mode, PlanInputs
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import FieldViolation, InvalidArgumentError
from services.common.images import ValidatedImage, validate_image

__all__ = [
    "MAX_SEED",
    "MAX_TXT2IMG_SIDE",
    "MIN_TXT2IMG_SIDE",
    "RequestLimits",
    "validate_generate",
    "validate_plan",
]

MAX_SEED = 2**64 - 1
"""Largest seed ComfyUI's KSampler accepts; seed + variants - 1 must not pass it."""
MIN_TXT2IMG_SIDE = 256
"""Smallest text-to-image side; Flux composes poorly below it."""
MAX_TXT2IMG_SIDE = 2048
"""Largest text-to-image side; Flux-dev is trained up to about two megapixels."""

# Workflow templates are files on the render service: a name, never a path.
_WORKFLOW_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_FILE_NAME = 255


@dataclass(frozen=True)
class RequestLimits:
    """The bounds a request must stay within.

    Attributes:
        max_variants: Most variants per request.
        max_instruction_chars: Longest instruction and description.
        max_loras: Most LoRAs per request.
        max_image_bytes: Largest encoded image.
        max_image_side: Largest image width or height.
    """

    max_variants: int = 8
    max_instruction_chars: int = 65536
    max_loras: int = 4
    max_image_bytes: int = 32 * 1024 * 1024
    max_image_side: int = 4096


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
    _check_text(request.instruction, "instruction", limits, violations, required=True)
    description = _check_description(request, limits, violations)
    _check_sampler(request.sampler, "sampler", violations)

    variants = request.variants or 1
    if variants > limits.max_variants:
        violations.append(
            FieldViolation("variants", f"is {variants}; at most {limits.max_variants} per request")
        )
    seed = request.seed if request.HasField("seed") else None
    if seed is not None and variants <= limits.max_variants and seed + variants - 1 > MAX_SEED:
        violations.append(
            FieldViolation(
                "seed",
                f"is {seed}; seed + variants - 1 must not exceed {MAX_SEED} (seeds never wrap)",
            )
        )
    if mode is Mode.TEXT_TO_IMAGE:
        # Image-to-image ignores both (the render warns), so only text-to-image checks them.
        for name in ("width", "height"):
            side = getattr(request, name)
            if side and not MIN_TXT2IMG_SIDE <= side <= MAX_TXT2IMG_SIDE:
                violations.append(
                    FieldViolation(
                        name,
                        f"is {side}; use 0 (default) or {MIN_TXT2IMG_SIDE} to "
                        f"{MAX_TXT2IMG_SIDE} pixels",
                    )
                )
    _check_loras(request.loras, limits, violations)
    controlnet = _check_controlnet(request, mode, limits, violations)
    if request.workflow and not _WORKFLOW_NAME.fullmatch(request.workflow):
        violations.append(
            FieldViolation(
                "workflow", "must be 1 to 64 letters, digits, '-' or '_' (a template name)"
            )
        )
    approved_plan = _check_approved_plan(request, violations)

    if violations:
        raise InvalidArgumentError(_summary(violations), violations)
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
    _check_text(request.instruction, "instruction", limits, violations, required=True)
    description = _check_description(request, limits, violations)
    _check_sampler(request.sampler, "sampler", violations)
    if violations:
        raise InvalidArgumentError(_summary(violations), violations)
    return PlanInputs(
        mode=Mode.IMAGE_TO_IMAGE if request.HasField("source_image") else Mode.TEXT_TO_IMAGE,
        instruction=request.instruction,
        image=image,
        description=description,
        overrides=request.sampler,
    )


def _summary(violations: list[FieldViolation]) -> str:
    fields = ", ".join(dict.fromkeys(v.field for v in violations))
    first = violations[0]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    return f"invalid request: {first.field} {first.description}{more}; fields: {fields}"


def _check_image(
    request: gateway_pb2.GenerateRequest | gateway_pb2.PlanRequest,
    field: str,
    limits: RequestLimits,
    violations: list[FieldViolation],
) -> ValidatedImage | None:
    if not request.HasField(field):
        return None
    image: common_pb2.Image = getattr(request, field)
    return _image_or_violation(image.data, f"{field}.data", limits, violations)


def _image_or_violation(
    data: bytes, field: str, limits: RequestLimits, violations: list[FieldViolation]
) -> ValidatedImage | None:
    try:
        return validate_image(
            data, field=field, max_bytes=limits.max_image_bytes, max_side=limits.max_image_side
        )
    except InvalidArgumentError as e:
        violations.extend(e.violations)
        return None


def _check_text(
    text: str,
    field: str,
    limits: RequestLimits,
    violations: list[FieldViolation],
    *,
    required: bool,
) -> None:
    if required and not text.strip():
        violations.append(FieldViolation(field, "is required and must not be blank"))
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
    _check_text(request.description, "description", limits, violations, required=True)
    return request.description


def _check_sampler(
    settings: common_pb2.SamplerSettings, field: str, violations: list[FieldViolation]
) -> None:
    for name in ("denoise", "cfg", "guidance"):
        if settings.HasField(name) and not math.isfinite(getattr(settings, name)):
            violations.append(FieldViolation(f"{field}.{name}", "must be a finite number"))
    if settings.HasField("steps") and settings.steps == 0:
        violations.append(FieldViolation(f"{field}.steps", "must be at least 1 when set"))


def _check_bare_name(name: str, field: str, violations: list[FieldViolation]) -> None:
    if not name.strip():
        violations.append(FieldViolation(field, "is required and must not be blank"))
    elif len(name) > _MAX_FILE_NAME:
        violations.append(FieldViolation(field, f"is longer than {_MAX_FILE_NAME} characters"))
    elif "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        violations.append(
            FieldViolation(field, "must be a bare file name as ComfyUI lists it, not a path")
        )


def _check_loras(
    specs: Sequence[common_pb2.LoraSpec], limits: RequestLimits, violations: list[FieldViolation]
) -> None:
    if len(specs) > limits.max_loras:
        violations.append(
            FieldViolation("loras", f"has {len(specs)} entries; at most {limits.max_loras}")
        )
    for i, lora in enumerate(specs):
        _check_bare_name(lora.name, f"loras[{i}].name", violations)
        if lora.HasField("strength") and not math.isfinite(lora.strength):
            violations.append(FieldViolation(f"loras[{i}].strength", "must be a finite number"))


def _check_controlnet(
    request: gateway_pb2.GenerateRequest,
    mode: Mode,
    limits: RequestLimits,
    violations: list[FieldViolation],
) -> common_pb2.ControlNetSpec | None:
    if not request.HasField("controlnet"):
        return None
    spec = request.controlnet
    if spec.type == common_pb2.CONTROL_TYPE_UNSPECIFIED:
        violations.append(
            FieldViolation("controlnet.type", "is required: CANNY, DEPTH, POSE or TILE")
        )
    start = spec.start_percent if spec.HasField("start_percent") else 0.0
    end = spec.end_percent if spec.HasField("end_percent") else 1.0
    bounds = (
        ("strength", spec.strength if spec.HasField("strength") else 0.6, 2.0),
        ("start_percent", start, 1.0),
        ("end_percent", end, 1.0),
    )
    for name, value, upper in bounds:
        if not (math.isfinite(value) and 0.0 <= value <= upper):
            violations.append(
                FieldViolation(f"controlnet.{name}", f"is {value}; must be within 0.0 and {upper}")
            )
    if math.isfinite(start) and math.isfinite(end) and end < start:
        violations.append(
            FieldViolation(
                "controlnet.end_percent", f"is {end}; must not be below start_percent ({start})"
            )
        )
    if spec.model:
        _check_bare_name(spec.model, "controlnet.model", violations)
    if spec.HasField("control_image"):
        _image_or_violation(
            spec.control_image.data, "controlnet.control_image.data", limits, violations
        )
    elif mode is Mode.TEXT_TO_IMAGE:
        violations.append(
            FieldViolation(
                "controlnet.control_image",
                "is required for text-to-image: there is no source image to derive it from",
            )
        )
    return spec


def _check_approved_plan(
    request: gateway_pb2.GenerateRequest, violations: list[FieldViolation]
) -> common_pb2.PromptPlan | None:
    if not request.HasField("plan"):
        return None
    plan = request.plan
    if not plan.positive_prompt.strip():
        violations.append(
            FieldViolation("plan.positive_prompt", "is required and must not be blank")
        )
    _check_sampler(plan.settings, "plan.settings", violations)
    return plan
