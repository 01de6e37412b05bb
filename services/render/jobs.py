"""A render request as the domain sees it, and its validation.

The servicer turns the proto ``RenderRequest`` into a :class:`RenderJob` (unset fields
stay ``None``); :func:`check_job` validates every field before anything is uploaded or
queued, fills in the Flux-dev defaults and computes the sizes. All bad fields of a
request are reported together in one INVALID_ARGUMENT.

The rules and limits are the ones the gateway applies too
(:mod:`services.common.request_rules`, :mod:`services.common.sampler`), so a request the
gateway passed is refused here only for what the render alone knows (prompt lengths after
cleaning, what ComfyUI has).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.common.errors import FieldViolation, InvalidArgumentError
from services.common.images import (
    MIN_SOURCE_SIDE,
    ValidatedImage,
    ValidatedMask,
    validate_image,
    validate_mask,
)
from services.common.request_rules import (
    DEFAULT_CONTROLNET_STRENGTH,
    ControlNetValues,
    check_controlnet,
    check_loras,
    check_output_quality,
    check_scale,
    check_txt2img_side,
    check_variants,
    check_workflow_name,
    raise_if_any,
)
from services.common.sampler import (
    SamplerOverrides,
    SamplerSettings,
    check_overrides,
    resolve_settings,
)
from services.render.dimensions import (
    MEGAPIXEL,
    Size,
    SizePlan,
    SizePolicy,
    Txt2ImgBounds,
    source_sizes,
    txt2img_size,
    upscale_sizes,
)
from services.render.result_images import Encoding, OutputFormat
from services.render.seeds import variant_seeds
from services.render.workflows import (
    DEFAULT_SIZE_POLICIES,
    DEFAULT_WORKFLOWS,
    Mode,
    OutputSizeRule,
)

__all__ = [
    "CheckedControlNet",
    "CheckedJob",
    "CheckedLora",
    "ControlKind",
    "ControlNetRequest",
    "JobLimits",
    "LoraRequest",
    "RenderJob",
    "RenderWarning",
    "check_job",
    "clean_prompt",
]

DEFAULT_LORA_STRENGTH = 1.0


class ControlKind(StrEnum):
    """What a ControlNet follows."""

    CANNY = "canny"
    DEPTH = "depth"
    POSE = "pose"
    TILE = "tile"


@dataclass(frozen=True)
class LoraRequest:
    """A LoRA as requested."""

    name: str
    strength: float | None = None


@dataclass(frozen=True)
class ControlNetRequest:
    """A ControlNet as requested; ``kind`` ``None`` = the caller left the type unset."""

    kind: ControlKind | None
    strength: float | None = None
    start_percent: float | None = None
    end_percent: float | None = None
    model: str = ""
    control_image: bytes | None = None


@dataclass(frozen=True)
class RenderJob:
    """One render request, before validation.

    Attributes:
        positive_prompt: The English prompt.
        negative_prompt: The negative prompt (may be empty).
        source_image: Encoded source bytes; ``None`` = text-to-image.
        settings: Sampler overrides.
        seed: Seed of variant 0; ``None`` = random.
        variants: How many images; 0 means 1.
        width: Text-to-image width; 0 = default.
        height: Text-to-image height; 0 = default.
        loras: LoRAs in chain order.
        controlnet: The ControlNet, if any.
        workflow: Template name; empty = the default for the mode.
        previews: Whether to stream previews.
        provenance: The caller's provenance record as JSON-ready data, if any.
        output_format: Encoding of the results.
        output_quality: JPEG/WEBP quality; 0 = the default.
        scale: Upscale factor (``scale`` size policy); ``None`` = the workflow's default.
        mask: Encoded inpainting mask (white = change), the source's size; ``None`` = none.
    """

    positive_prompt: str
    negative_prompt: str = ""
    source_image: bytes | None = None
    settings: SamplerOverrides = field(default_factory=SamplerOverrides)
    seed: int | None = None
    variants: int = 0
    width: int = 0
    height: int = 0
    loras: tuple[LoraRequest, ...] = ()
    controlnet: ControlNetRequest | None = None
    workflow: str = ""
    previews: bool = False
    provenance: Mapping[str, Any] | None = None
    output_format: OutputFormat = OutputFormat.PNG
    output_quality: int = 0
    scale: float | None = None
    mask: bytes | None = None


@dataclass(frozen=True)
class JobLimits:
    """The configured bounds a request is checked against.

    ``cap_mp`` bounds image-to-image renders that keep the source's size;
    ``upscale_cap_mp`` bounds the output of an upscale (``scale`` policy).
    """

    max_variants: int = 8
    max_loras: int = 4
    max_prompt_chars: int = 4000
    max_image_bytes: int = 32 * 1024 * 1024
    max_image_side: int = 4096
    cap_mp: float = 2.0
    upscale_cap_mp: float = 4.0
    txt2img: Txt2ImgBounds = field(default_factory=Txt2ImgBounds)
    lora_strength_min: float = -2.0
    lora_strength_max: float = 2.0


@dataclass(frozen=True)
class RenderWarning:
    """A notice streamed to the caller that does not stop the render."""

    code: str
    message: str


@dataclass(frozen=True)
class CheckedLora:
    """A LoRA with its strength resolved and clamped."""

    name: str
    strength: float


@dataclass(frozen=True)
class CheckedControlNet:
    """A ControlNet with every value resolved; ``model`` empty = the configured default."""

    kind: ControlKind
    strength: float
    start_percent: float
    end_percent: float
    model: str
    control_image: ValidatedImage | None


@dataclass(frozen=True)
class CheckedJob:
    """A validated request with defaults filled in.

    Attributes:
        mode: Image-to-image when a source was given.
        workflow: The template name to use.
        source: The validated source image (image-to-image only).
        positive: The cleaned positive prompt.
        negative: The cleaned negative prompt.
        settings: Every sampler setting.
        seeds: One seed per variant.
        render_size: What Flux draws (multiples of 16).
        output_size: What the caller gets back (by the workflow's size policy).
        capped: True when the megapixel cap made the render smaller than wanted.
        encoding: Format and quality of the results.
        loras: LoRAs in chain order.
        controlnet: The ControlNet, if any.
        previews: Whether to stream previews.
        provenance: The caller's provenance record.
        warnings: Notices to stream before rendering.
        mask: The validated inpainting mask; the result is kept equal to the source
            outside it.
    """

    mode: Mode
    workflow: str
    source: ValidatedImage | None
    positive: str
    negative: str
    settings: SamplerSettings
    seeds: list[int]
    render_size: Size
    output_size: Size
    capped: bool
    encoding: Encoding
    loras: tuple[CheckedLora, ...]
    controlnet: CheckedControlNet | None
    previews: bool
    provenance: Mapping[str, Any] | None
    warnings: tuple[RenderWarning, ...]
    mask: ValidatedMask | None = None


def clean_prompt(text: str) -> str:
    """Removes control characters from a prompt.

    Line breaks and tabs become spaces (the A1111 parameters line keeps the prompt on
    one line); other control and format characters are dropped; runs of spaces shrink.

    Args:
        text: The prompt as received.

    Returns:
        The cleaned prompt, stripped.
    """
    kept = []
    for ch in text:
        if ch in "\n\r\t\v\f":
            kept.append(" ")
        elif unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"}:
            continue
        else:
            kept.append(ch)
    return " ".join("".join(kept).split())


def _image(
    violations: list[FieldViolation],
    data: bytes,
    field_name: str,
    limits: JobLimits,
    min_side: int = 1,
) -> ValidatedImage | None:
    try:
        return validate_image(
            data,
            field=field_name,
            max_bytes=limits.max_image_bytes,
            max_side=limits.max_image_side,
            min_side=min_side,
        )
    except InvalidArgumentError as e:
        violations.extend(e.violations)
        return None


def check_job(
    job: RenderJob,
    limits: JobLimits,
    size_rule_of: Callable[[str], OutputSizeRule] | None = None,
) -> CheckedJob:
    """Validates a request and resolves its defaults and sizes.

    Decodes images (tens of milliseconds for a large photo): call it in a thread.

    Args:
        job: The request.
        limits: The configured bounds.
        size_rule_of: The output size rule of a workflow by name (asked once the
            fields are valid; it may raise the workflow's own errors); ``None`` = the
            mode's default policy.

    Returns:
        The checked job.

    Raises:
        InvalidArgumentError: One or more fields are bad; every violation names its field.
    """
    v: list[FieldViolation] = []
    warnings: list[RenderWarning] = []
    mode = Mode.IMG2IMG if job.source_image is not None else Mode.TXT2IMG

    positive = clean_prompt(job.positive_prompt)
    negative = clean_prompt(job.negative_prompt)
    if not positive:
        v.append(FieldViolation("positive_prompt", "is empty; a render needs a prompt"))
    for name, text in (("positive_prompt", positive), ("negative_prompt", negative)):
        if len(text) > limits.max_prompt_chars:
            v.append(
                FieldViolation(
                    name, f"has {len(text)} characters; the limit is {limits.max_prompt_chars}"
                )
            )

    variants = check_variants(job.variants, job.seed, limits.max_variants, v)
    if job.workflow:
        check_workflow_name(job.workflow, "workflow", v)
    workflow = job.workflow or DEFAULT_WORKFLOWS[mode]

    check_overrides(job.settings, "settings", v, bounded=True)
    s = job.settings
    if mode is Mode.TXT2IMG and s.denoise is not None and s.denoise != 1.0:
        warnings.append(
            RenderWarning(
                "DENOISE_IGNORED",
                f"denoise {s.denoise:g} ignored: text-to-image always denoises fully (1.0)",
            )
        )
    if mode is Mode.TXT2IMG:
        for name in ("width", "height"):
            check_txt2img_side(
                name, getattr(job, name), limits.txt2img.min_side, limits.txt2img.max_side, v
            )

    check_loras([(lora.name, lora.strength) for lora in job.loras], limits.max_loras, v)
    loras: list[CheckedLora] = []
    for i, lora in enumerate(job.loras):
        strength = DEFAULT_LORA_STRENGTH if lora.strength is None else lora.strength
        if not math.isfinite(strength):
            continue
        clamped = min(max(strength, limits.lora_strength_min), limits.lora_strength_max)
        if clamped != strength:
            warnings.append(
                RenderWarning(
                    "LORA_STRENGTH_CLAMPED",
                    f"loras[{i}] ({lora.name}) strength {strength:g} clamped to {clamped:g} "
                    f"(range {limits.lora_strength_min:g} to {limits.lora_strength_max:g})",
                )
            )
        loras.append(CheckedLora(lora.name.strip(), clamped))

    controlnet: CheckedControlNet | None = None
    cn = job.controlnet
    if cn is not None:
        if cn.kind is None:
            v.append(
                FieldViolation("controlnet.type", "is required: one of CANNY, DEPTH, POSE, TILE")
            )
        check_controlnet(
            ControlNetValues(cn.strength, cn.start_percent, cn.end_percent),
            model=cn.model,
            has_control_image=cn.control_image is not None,
            text_to_image=mode is Mode.TXT2IMG,
            violations=v,
        )
        control_image = (
            _image(v, cn.control_image, "controlnet.control_image.data", limits)
            if cn.control_image is not None
            else None
        )
        if cn.kind is not None:
            controlnet = CheckedControlNet(
                kind=cn.kind,
                strength=DEFAULT_CONTROLNET_STRENGTH if cn.strength is None else cn.strength,
                start_percent=0.0 if cn.start_percent is None else cn.start_percent,
                end_percent=1.0 if cn.end_percent is None else cn.end_percent,
                model=cn.model.strip(),
                control_image=control_image,
            )

    source: ValidatedImage | None = None
    if job.source_image is not None:
        source = _image(v, job.source_image, "source_image.data", limits, MIN_SOURCE_SIDE)
    mask: ValidatedMask | None = None
    if job.mask is not None and (source is not None or job.source_image is None):
        try:
            mask = validate_mask(
                job.mask,
                field="mask.data",
                source=source,
                max_bytes=limits.max_image_bytes,
                max_side=limits.max_image_side,
            )
        except InvalidArgumentError as e:
            v.extend(e.violations)
    quality = check_output_quality(job.output_quality, v)
    if job.scale is not None:
        check_scale(job.scale, v)

    raise_if_any(v, "render request")
    settings = resolve_settings(s, text_to_image=mode is Mode.TXT2IMG)
    seeds = variant_seeds(job.seed, variants)
    rule = (
        size_rule_of(workflow)
        if size_rule_of is not None
        else OutputSizeRule(DEFAULT_SIZE_POLICIES[mode])
    )
    sizes, size_warnings = _sizes(job, workflow, rule, source, limits)
    warnings[:0] = size_warnings

    return CheckedJob(
        mode=mode,
        workflow=workflow,
        source=source,
        positive=positive,
        negative=negative,
        settings=settings,
        seeds=seeds,
        render_size=sizes.render,
        output_size=sizes.output,
        capped=sizes.capped,
        encoding=Encoding(job.output_format, quality),
        loras=tuple(loras),
        controlnet=controlnet,
        previews=job.previews,
        provenance=job.provenance,
        warnings=tuple(warnings),
        mask=mask,
    )


def _sizes(
    job: RenderJob,
    workflow: str,
    rule: OutputSizeRule,
    source: ValidatedImage | None,
    limits: JobLimits,
) -> tuple[SizePlan, list[RenderWarning]]:
    """The render and output sizes by the workflow's policy, and what to warn about.

    Raises:
        InvalidArgumentError: ``scale`` outside the workflow's range, or a source
            already too large to enlarge.
    """
    warnings: list[RenderWarning] = []
    # A text-to-image request has no source to size from, whatever the template says
    # (a mismatched template is refused right after).
    policy = rule.policy if source is not None else SizePolicy.REQUESTED
    if job.scale is not None and policy is not SizePolicy.SCALE:
        warnings.append(
            RenderWarning(
                "SCALE_IGNORED",
                f"scale {job.scale:g} ignored: workflow {workflow!r} does not upscale "
                f"(its output size policy is {policy.value!r})",
            )
        )

    if source is None or policy is SizePolicy.REQUESTED:
        wanted_w = job.width or (source.width if source is not None else 0)
        wanted_h = job.height or (source.height if source is not None else 0)
        render = txt2img_size(wanted_w, wanted_h, limits.txt2img)
        requested = Size(job.width or render.width, job.height or render.height)
        if (job.width or job.height) and requested != render:
            warnings.append(
                RenderWarning(
                    "DIMENSIONS_ADJUSTED",
                    f"requested {requested} rendered as {render} (multiples of 16, "
                    f"sides {limits.txt2img.min_side} to {limits.txt2img.max_side}, "
                    f"at most {limits.txt2img.cap_mp:g} MP)",
                )
            )
        return SizePlan(render, render), warnings

    source_size = Size(source.width, source.height)
    if policy is SizePolicy.SCALE:
        factor = rule.default_scale if job.scale is None else job.scale
        v: list[FieldViolation] = []
        check_scale(factor, v, low=rule.min_scale, high=rule.max_scale, workflow=workflow)
        if not v and source_size.pixels * rule.min_scale**2 > limits.upscale_cap_mp * MEGAPIXEL:
            v.append(
                FieldViolation(
                    "source_image.data",
                    f"is {source_size} pixels; enlarged by at least {rule.min_scale:g} it "
                    f"would exceed the {limits.upscale_cap_mp:g} MP upscale ceiling",
                )
            )
        raise_if_any(v, "render request")
        plan = upscale_sizes(source_size, factor, limits.upscale_cap_mp)
        why = f"{source_size} x {factor:g} = {_times(source_size, factor)}"
        cap = limits.upscale_cap_mp
    else:
        plan = source_sizes(source_size, limits.cap_mp)
        why = f"the source's size {source_size}"
        cap = limits.cap_mp
    if plan.capped:
        warnings.append(
            RenderWarning(
                "RENDER_SCALED_TO_CAP",
                f"rendered at {plan.render} to stay within {cap:g} MP"
                + (
                    f"; returned at {plan.output} instead of {why}"
                    if policy is SizePolicy.SCALE
                    else f", then resized to {why}"
                ),
            )
        )
    requested = Size(job.width or plan.output.width, job.height or plan.output.height)
    if (job.width or job.height) and requested != plan.output:
        warnings.insert(
            0,
            RenderWarning(
                "DIMENSIONS_IGNORED",
                f"width/height {job.width}x{job.height} ignored: workflow {workflow!r} "
                f"returns {plan.output} ({policy.value} size policy)",
            ),
        )
    return plan, warnings


def _times(size: Size, factor: float) -> Size:
    return Size(round(size.width * factor), round(size.height * factor))
