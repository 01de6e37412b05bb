"""A render request as the domain sees it, and its validation.

The servicer turns the proto ``RenderRequest`` into a :class:`RenderJob` (unset fields
stay ``None``); :func:`check_job` validates every field before anything is uploaded or
queued, fills in the Flux-dev defaults and computes the sizes. All bad fields of a
request are reported together in one INVALID_ARGUMENT.

Defaults (the proto documents them): denoise 0.68 for image-to-image and 1.0 for
text-to-image, 25 steps, cfg 1.0 (Flux-dev is guidance-distilled; at cfg 1.0 ComfyUI
skips the negative branch), FluxGuidance 3.5, ``euler`` with ``simple``.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.common.errors import FieldViolation, InvalidArgumentError
from services.common.images import ValidatedImage, validate_image
from services.render.dimensions import Size, Txt2ImgBounds, render_size_for, txt2img_size
from services.render.seeds import SeedRangeError, variant_seeds
from services.render.workflows import DEFAULT_WORKFLOWS, Mode, validate_workflow_name

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
    "SamplerOverrides",
    "SamplerValues",
    "check_job",
    "clean_prompt",
]

DEFAULT_DENOISE_IMG2IMG = 0.68
DEFAULT_STEPS = 25
DEFAULT_CFG = 1.0
DEFAULT_GUIDANCE = 3.5
DEFAULT_SAMPLER = "euler"
DEFAULT_SCHEDULER = "simple"
DEFAULT_LORA_STRENGTH = 1.0
DEFAULT_CONTROLNET_STRENGTH = 0.6


class ControlKind(StrEnum):
    """What a ControlNet follows."""

    CANNY = "canny"
    DEPTH = "depth"
    POSE = "pose"
    TILE = "tile"


@dataclass(frozen=True)
class SamplerOverrides:
    """Sampler settings as requested; ``None`` = not given."""

    denoise: float | None = None
    steps: int | None = None
    cfg: float | None = None
    guidance: float | None = None
    sampler_name: str | None = None
    scheduler: str | None = None


@dataclass(frozen=True)
class SamplerValues:
    """Sampler settings as rendered, every field set."""

    denoise: float
    steps: int
    cfg: float
    guidance: float
    sampler_name: str
    scheduler: str


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


@dataclass(frozen=True)
class JobLimits:
    """The configured bounds a request is checked against."""

    max_variants: int = 8
    max_loras: int = 8
    max_prompt_chars: int = 4000
    max_image_bytes: int = 32 * 1024 * 1024
    max_image_side: int = 4096
    cap_mp: float = 2.0
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
        output_size: What the caller gets back (the source's size for image-to-image).
        loras: LoRAs in chain order.
        controlnet: The ControlNet, if any.
        previews: Whether to stream previews.
        provenance: The caller's provenance record.
        warnings: Notices to stream before rendering.
    """

    mode: Mode
    workflow: str
    source: ValidatedImage | None
    positive: str
    negative: str
    settings: SamplerValues
    seeds: list[int]
    render_size: Size
    output_size: Size
    loras: tuple[CheckedLora, ...]
    controlnet: CheckedControlNet | None
    previews: bool
    provenance: Mapping[str, Any] | None
    warnings: tuple[RenderWarning, ...]


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


class _Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field_name: str, description: str) -> None:
        self.items.append(FieldViolation(field_name, description))


def _finite_in(
    v: _Violations, field_name: str, value: float | None, low: float, high: float
) -> bool:
    if value is None:
        return True
    if math.isnan(value) or math.isinf(value):
        v.add(field_name, f"{value} is not a finite number")
        return False
    if not low <= value <= high:
        v.add(field_name, f"{value:g} is outside {low:g} to {high:g}")
        return False
    return True


def _bare_name(v: _Violations, field_name: str, name: str, what: str) -> None:
    if not name.strip():
        v.add(field_name, f"the {what} name is empty")
    elif "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        v.add(field_name, f"{name!r} is not a bare {what} file name (no directories or paths)")


def _image(
    v: _Violations, data: bytes, field_name: str, limits: JobLimits
) -> ValidatedImage | None:
    try:
        return validate_image(
            data, field=field_name, max_bytes=limits.max_image_bytes, max_side=limits.max_image_side
        )
    except InvalidArgumentError as e:
        v.items.extend(e.violations)
        return None


def check_job(job: RenderJob, limits: JobLimits) -> CheckedJob:
    """Validates a request and resolves its defaults and sizes.

    Decodes images (tens of milliseconds for a large photo): call it in a thread.

    Args:
        job: The request.
        limits: The configured bounds.

    Returns:
        The checked job.

    Raises:
        InvalidArgumentError: One or more fields are bad; every violation names its field.
    """
    v = _Violations()
    warnings: list[RenderWarning] = []
    mode = Mode.IMG2IMG if job.source_image is not None else Mode.TXT2IMG

    positive = clean_prompt(job.positive_prompt)
    negative = clean_prompt(job.negative_prompt)
    if not positive:
        v.add("positive_prompt", "is empty; a render needs a prompt")
    for name, text in (("positive_prompt", positive), ("negative_prompt", negative)):
        if len(text) > limits.max_prompt_chars:
            v.add(name, f"has {len(text)} characters; the limit is {limits.max_prompt_chars}")

    variants = job.variants or 1
    if variants > limits.max_variants:
        v.add("variants", f"{variants} is above the maximum of {limits.max_variants}")

    seeds: list[int] = []
    if variants <= limits.max_variants:
        try:
            seeds = variant_seeds(job.seed, variants)
        except SeedRangeError as e:
            v.add("seed", str(e))

    if job.workflow:
        try:
            validate_workflow_name(job.workflow)
        except InvalidArgumentError as e:
            v.items.extend(e.violations)
    workflow = job.workflow or DEFAULT_WORKFLOWS[mode]

    s = job.settings
    _finite_in(v, "settings.denoise", s.denoise, 0.0, 1.0)
    if s.steps is not None and not 1 <= s.steps <= 100:
        v.add("settings.steps", f"{s.steps} is outside 1 to 100")
    _finite_in(v, "settings.cfg", s.cfg, 1.0, 30.0)
    _finite_in(v, "settings.guidance", s.guidance, 0.0, 100.0)
    for name, value in (
        ("settings.sampler_name", s.sampler_name),
        ("settings.scheduler", s.scheduler),
    ):
        if value is not None and not value.strip():
            v.add(name, "is set but empty")
    if mode is Mode.TXT2IMG and s.denoise is not None and s.denoise != 1.0:
        warnings.append(
            RenderWarning(
                "DENOISE_IGNORED",
                f"denoise {s.denoise:g} ignored: text-to-image always denoises fully (1.0)",
            )
        )
    settings = SamplerValues(
        denoise=1.0
        if mode is Mode.TXT2IMG
        else (s.denoise if s.denoise is not None else DEFAULT_DENOISE_IMG2IMG),
        steps=s.steps if s.steps is not None else DEFAULT_STEPS,
        cfg=s.cfg if s.cfg is not None else DEFAULT_CFG,
        guidance=s.guidance if s.guidance is not None else DEFAULT_GUIDANCE,
        sampler_name=(s.sampler_name or DEFAULT_SAMPLER).strip(),
        scheduler=(s.scheduler or DEFAULT_SCHEDULER).strip(),
    )

    if len(job.loras) > limits.max_loras:
        v.add("loras", f"{len(job.loras)} LoRAs; the maximum is {limits.max_loras}")
    loras: list[CheckedLora] = []
    for i, lora in enumerate(job.loras):
        _bare_name(v, f"loras[{i}].name", lora.name, "LoRA")
        strength = DEFAULT_LORA_STRENGTH if lora.strength is None else lora.strength
        if math.isnan(strength):
            v.add(f"loras[{i}].strength", "is NaN")
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
            v.add("controlnet.type", "is unspecified; choose CANNY, DEPTH, POSE or TILE")
        _finite_in(v, "controlnet.strength", cn.strength, 0.0, 2.0)
        start_ok = _finite_in(v, "controlnet.start_percent", cn.start_percent, 0.0, 1.0)
        end_ok = _finite_in(v, "controlnet.end_percent", cn.end_percent, 0.0, 1.0)
        start = 0.0 if cn.start_percent is None else cn.start_percent
        end = 1.0 if cn.end_percent is None else cn.end_percent
        if start_ok and end_ok and end < start:
            v.add("controlnet.end_percent", f"{end:g} is below start_percent {start:g}")
        if cn.model:
            _bare_name(v, "controlnet.model", cn.model, "ControlNet")
        control_image = (
            _image(v, cn.control_image, "controlnet.control_image.data", limits)
            if cn.control_image is not None
            else None
        )
        if mode is Mode.TXT2IMG and cn.control_image is None:
            v.add(
                "controlnet.control_image",
                "text-to-image has no source to derive the control image from; send one",
            )
        if cn.kind is not None:
            controlnet = CheckedControlNet(
                kind=cn.kind,
                strength=DEFAULT_CONTROLNET_STRENGTH if cn.strength is None else cn.strength,
                start_percent=start,
                end_percent=end,
                model=cn.model.strip(),
                control_image=control_image,
            )

    source: ValidatedImage | None = None
    if job.source_image is not None:
        source = _image(v, job.source_image, "source_image.data", limits)

    if v.items:
        fields = ", ".join(dict.fromkeys(item.field for item in v.items))
        raise InvalidArgumentError(f"invalid render request: {fields}", v.items)

    if mode is Mode.IMG2IMG:
        assert source is not None
        output_size = Size(source.width, source.height)
        render_size = render_size_for(output_size, limits.cap_mp)
        if job.width or job.height:
            warnings.insert(
                0,
                RenderWarning(
                    "DIMENSIONS_IGNORED",
                    f"width/height {job.width}x{job.height} ignored: image-to-image returns "
                    f"the source's size {output_size}",
                ),
            )
    else:
        render_size = txt2img_size(job.width, job.height, limits.txt2img)
        output_size = render_size
        requested = Size(job.width or render_size.width, job.height or render_size.height)
        if (job.width or job.height) and requested != render_size:
            warnings.insert(
                0,
                RenderWarning(
                    "DIMENSIONS_ADJUSTED",
                    f"requested {requested} rendered as {render_size} (multiples of 16, "
                    f"sides {limits.txt2img.min_side} to {limits.txt2img.max_side}, "
                    f"at most {limits.txt2img.cap_mp:g} MP)",
                ),
            )

    return CheckedJob(
        mode=mode,
        workflow=workflow,
        source=source,
        positive=positive,
        negative=negative,
        settings=settings,
        seeds=seeds,
        render_size=render_size,
        output_size=output_size,
        loras=tuple(loras),
        controlnet=controlnet,
        previews=job.previews,
        provenance=job.provenance,
        warnings=tuple(warnings),
    )
