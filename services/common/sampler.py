"""Flux-dev sampler settings: the one home of their defaults, bounds and merging.

The planner starts its plans from :data:`FLUX_DEV_DEFAULTS` and merges the caller's
overrides with :func:`apply_overrides`; the render service fills what a request left unset
with :func:`resolve_settings`; the gateway, the planner and the render service check
overrides with :func:`check_overrides`. Everything speaks the two dataclasses below and
meets the wire only through :func:`overrides_from_proto` and :func:`settings_to_proto`.

| setting        | default            | accepted (``SAMPLER_BOUNDS``) | why                      |
|----------------|--------------------|-------------------------------|--------------------------|
| ``denoise``    | 1.0 txt2img · 0.68 | 0.0–1.0                       | 0.65–0.7 keeps the source |
| ``steps``      | 25                 | 1–100                         | Flux-dev is done by 20–28 |
| ``cfg``        | 1.0                | 1.0–30.0                      | guidance-distilled model |
| ``guidance``   | 3.5                | 0.0–100.0                     | the FluxGuidance input   |
| ``sampler``    | ``euler``          | a lower-case identifier       | ComfyUI's own names      |
| ``scheduler``  | ``simple``         | a lower-case identifier       | ComfyUI's own names      |

Flux-dev is guidance-distilled: its "guidance" is an input of the model, and
classifier-free guidance (cfg) stays at 1.0 (ComfyUI then skips the negative branch).
25 steps sits in the middle of what Flux-dev is run at (ComfyUI's example graph uses 20,
the diffusers pipeline 28); more adds time, not detail.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from imagegen.common.v1 import common_pb2
from services.common.errors import FieldViolation

__all__ = [
    "FLUX_DEV_DEFAULTS",
    "IMG2IMG_DEFAULT_DENOISE",
    "SAMPLER_BOUNDS",
    "SamplerOverrides",
    "SamplerSettings",
    "apply_overrides",
    "check_overrides",
    "from_float32",
    "overlay",
    "overrides_from_proto",
    "overrides_to_proto",
    "resolve_settings",
    "settings_to_proto",
]


@dataclass(frozen=True)
class SamplerSettings:
    """Complete KSampler settings, every field set.

    Attributes:
        denoise: Share of the source redrawn, 0.0–1.0.
        steps: Sampling steps.
        cfg: Classifier-free guidance scale (1.0 for Flux-dev).
        guidance: Flux guidance (FluxGuidance node).
        sampler_name: ComfyUI sampler, e.g. ``"euler"``.
        scheduler: ComfyUI scheduler, e.g. ``"simple"``.
    """

    denoise: float
    steps: int
    cfg: float
    guidance: float
    sampler_name: str
    scheduler: str


@dataclass(frozen=True)
class SamplerOverrides:
    """Settings a caller fixed; ``None`` means "not given" (proto3 presence)."""

    denoise: float | None = None
    steps: int | None = None
    cfg: float | None = None
    guidance: float | None = None
    sampler_name: str | None = None
    scheduler: str | None = None


FLUX_DEV_DEFAULTS = SamplerSettings(
    denoise=1.0,
    steps=25,
    cfg=1.0,
    guidance=3.5,
    sampler_name="euler",
    scheduler="simple",
)
"""What Flux-dev expects (denoise 1.0 is text-to-image's); a plan starts from these."""

IMG2IMG_DEFAULT_DENOISE = 0.68
"""Denoise of an image-to-image render nobody chose one for: keeps the source's layout."""

SAMPLER_BOUNDS: Mapping[str, tuple[float, float]] = {
    "denoise": (0.0, 1.0),
    "steps": (1, 100),
    "cfg": (1.0, 30.0),
    "guidance": (0.0, 100.0),
}
"""What the sampler accepts (common.proto documents the same ranges)."""

_NUMBERS = ("denoise", "steps", "cfg", "guidance")
_NAMES = ("sampler_name", "scheduler")
# ComfyUI's sampler and scheduler names are lower-case identifiers ("dpmpp_2m",
# "sgm_uniform"); the render service checks them against what the server offers.
_NAME = re.compile(r"[a-z0-9_]{1,64}")


def from_float32(value: float) -> float:
    """A proto ``float`` as the decimal the caller wrote: 0.85, not 0.8500000238418579.

    Seven significant digits are what a 32-bit float holds; without this the graph, the
    logs and the PNG metadata would carry the binary noise.

    Args:
        value: The value as read from a proto ``float`` field.

    Returns:
        The shortest decimal of at most seven significant digits.
    """
    return float(f"{value:.7g}") if math.isfinite(value) else value


def overrides_from_proto(settings: common_pb2.SamplerSettings) -> SamplerOverrides:
    """The domain form of a ``SamplerSettings`` message; unset fields stay ``None``.

    Args:
        settings: Overrides (or complete settings) as received.

    Returns:
        The overrides, floats cleaned with :func:`from_float32`.
    """

    def number(name: str) -> float | None:
        return from_float32(getattr(settings, name)) if settings.HasField(name) else None

    return SamplerOverrides(
        denoise=number("denoise"),
        steps=settings.steps if settings.HasField("steps") else None,
        cfg=number("cfg"),
        guidance=number("guidance"),
        sampler_name=settings.sampler_name if settings.HasField("sampler_name") else None,
        scheduler=settings.scheduler if settings.HasField("scheduler") else None,
    )


def settings_to_proto(settings: SamplerSettings) -> common_pb2.SamplerSettings:
    """The wire form of complete settings (every field set)."""
    return common_pb2.SamplerSettings(
        denoise=settings.denoise,
        steps=settings.steps,
        cfg=settings.cfg,
        guidance=settings.guidance,
        sampler_name=settings.sampler_name,
        scheduler=settings.scheduler,
    )


def check_overrides(
    overrides: SamplerOverrides,
    prefix: str,
    violations: list[FieldViolation],
    *,
    bounded: bool,
) -> None:
    """Adds a violation for every override nothing could use.

    NaN, infinities and names that are not sampler identifiers are always refused. Values
    outside :data:`SAMPLER_BOUNDS` (zero steps too) are refused only when ``bounded``: the
    planner clamps them with a note instead, the render service (which would draw them)
    refuses them.

    Args:
        overrides: The settings to check.
        prefix: Their path in the request, e.g. ``"sampler"`` or ``"plan.settings"``.
        violations: Where violations are added, each naming ``prefix.<field>``.
        bounded: Refuse numbers outside :data:`SAMPLER_BOUNDS`.
    """
    for name in _NUMBERS:
        value = getattr(overrides, name)
        if value is None:
            continue
        low, high = SAMPLER_BOUNDS[name]
        if not math.isfinite(value):
            violations.append(FieldViolation(f"{prefix}.{name}", f"{value} is not a finite number"))
        elif bounded and not low <= value <= high:
            violations.append(
                FieldViolation(f"{prefix}.{name}", f"{value:g} is outside {low:g} to {high:g}")
            )
    for name in _NAMES:
        value = getattr(overrides, name)
        if value is not None and not _NAME.fullmatch(value):
            violations.append(
                FieldViolation(
                    f"{prefix}.{name}",
                    f"must be a ComfyUI {name.replace('_', ' ')} such as "
                    f"{getattr(FLUX_DEV_DEFAULTS, name)!r} (1 to 64 lower-case letters, "
                    f"digits, underscores), got {value[:80]!r}",
                )
            )


def overrides_to_proto(overrides: SamplerOverrides) -> common_pb2.SamplerSettings:
    """The wire form of overrides: only the given fields are set."""
    given = {name: value for name, value in vars(overrides).items() if value is not None}
    return common_pb2.SamplerSettings(**given)


def overlay(base: SamplerOverrides, top: SamplerOverrides) -> SamplerOverrides:
    """``top``'s given fields over ``base``'s (e.g. a caller's overrides over an approved
    plan's settings, which the render service then completes)."""
    given = {name: value for name, value in vars(top).items() if value is not None}
    return replace(base, **given)


def resolve_settings(overrides: SamplerOverrides, *, text_to_image: bool) -> SamplerSettings:
    """Complete settings for a render: the given values, Flux-dev defaults for the rest.

    Call :func:`check_overrides` first (bounded).

    Args:
        overrides: The settings the request gave.
        text_to_image: True when there is no source: denoise is then always 1.0 (an
            empty latent must be fully denoised).

    Returns:
        Every setting.
    """
    if text_to_image:
        denoise = 1.0
    else:
        denoise = overrides.denoise if overrides.denoise is not None else IMG2IMG_DEFAULT_DENOISE
    d = FLUX_DEV_DEFAULTS
    return SamplerSettings(
        denoise=denoise,
        steps=overrides.steps if overrides.steps is not None else d.steps,
        cfg=overrides.cfg if overrides.cfg is not None else d.cfg,
        guidance=overrides.guidance if overrides.guidance is not None else d.guidance,
        sampler_name=overrides.sampler_name or d.sampler_name,
        scheduler=overrides.scheduler or d.scheduler,
    )


def apply_overrides(
    settings: SamplerSettings, overrides: SamplerOverrides, *, text_to_image: bool
) -> tuple[SamplerSettings, list[str]]:
    """Lets every given override win over planned settings, clamped to the bounds.

    Call :func:`check_overrides` first (NaN cannot be clamped).

    Args:
        settings: The planned settings.
        overrides: The caller's overrides.
        text_to_image: True when there is no source; a denoise other than 1.0 is then
            ignored (an empty latent must be fully denoised).

    Returns:
        The final settings and one note per applied, clamped or ignored override.
    """
    notes: list[str] = []
    changes: dict[str, float | int | str] = {}
    for name in _NUMBERS:
        value = getattr(overrides, name)
        if value is None:
            continue
        if name == "denoise" and text_to_image and value != 1.0:
            notes.append(f"denoise override {value:g} ignored: text-to-image always uses 1.0")
            continue
        clamped = _clamp_override(name, value, getattr(settings, name), notes)
        changes[name] = int(clamped) if name == "steps" else clamped
    for name in _NAMES:
        value = getattr(overrides, name)
        if value is not None:
            if value != getattr(settings, name):
                notes.append(f"{name} {value!r} from the caller's overrides replaces the plan's")
            changes[name] = value
    return replace(settings, **changes), notes  # type: ignore[arg-type]


def _clamp_override(name: str, value: float, planned: float, notes: list[str]) -> float:
    low, high = SAMPLER_BOUNDS[name]
    if low <= value <= high:
        if value != planned:
            notes.append(f"{name} {value:g} from the caller's overrides replaces {planned:g}")
        return value
    clamped = min(max(value, low), high)
    notes.append(
        f"{name} override {value:g} is outside the valid {low:g}–{high:g}; clamped to {clamped:g}"
    )
    return clamped
