"""KSampler settings of a plan: Flux-dev defaults, the model's choices, the caller's overrides.

Who decides what, in order::

    Flux-dev defaults  cfg 1.0 · guidance 3.5 · euler / simple · 25 steps
    the model          denoise (clamped to its intent's range, see intents.py),
                       steps (clamped to 20–30), guidance (clamped to 1.5–5.0)
    the caller         any field set in `overrides` wins, clamped only to what the
                       sampler accepts (denoise 0–1, steps 1–100, cfg 1–30, guidance 0–100)

Flux-dev is guidance-distilled: its "guidance" is an input of the model, and classifier-free
guidance (cfg) must stay at 1.0, so the model never chooses cfg, sampler or scheduler.
Every clamp adds a warning to the plan; nothing out of range is passed on silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from services.common.errors import FieldViolation, InvalidArgumentError
from services.planner.intents import Intent, clamp_denoise

__all__ = [
    "FLUX_DEV_DEFAULTS",
    "MODEL_GUIDANCE_RANGE",
    "MODEL_STEPS_RANGE",
    "SamplerOverrides",
    "SamplerSettings",
    "apply_overrides",
    "settle_model_choices",
    "validate_overrides",
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
    """The caller's overrides; ``None`` means "not given" (proto3 presence)."""

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
"""What Flux-dev expects; a plan starts from these."""

MODEL_STEPS_RANGE = (20, 30)
"""Steps the model may choose: below 20 Flux-dev leaves noise, above 30 adds only time."""

MODEL_GUIDANCE_RANGE = (1.5, 5.0)
"""Flux guidance the model may choose: ~2 looks most photographic, ~4.5 follows the
prompt most literally; beyond that images burn."""

# What the sampler itself accepts (common.proto documents the same ranges).
_VALID_DENOISE = (0.0, 1.0)
_VALID_STEPS = (1, 100)
_VALID_CFG = (1.0, 30.0)
_VALID_GUIDANCE = (0.0, 100.0)
# ComfyUI's sampler and scheduler names are lower-case identifiers; the render service
# checks them against what the server offers, the planner only refuses garbage.
_NAME = re.compile(r"[a-z0-9_]{1,64}")


def settle_model_choices(
    intent: Intent, *, denoise: float, steps: int, guidance: float
) -> tuple[SamplerSettings, list[str]]:
    """Complete settings from the model's choices, each clamped to its allowed range.

    Args:
        intent: The plan's intent (decides the denoise range).
        denoise: The model's denoise.
        steps: The model's step count.
        guidance: The model's Flux guidance.

    Returns:
        The settings and one warning per clamped value.
    """
    warnings: list[str] = []
    denoise, warning = clamp_denoise(intent, denoise)
    if warning:
        warnings.append(warning)
    low, high = MODEL_STEPS_RANGE
    if not low <= steps <= high:
        clamped_steps = min(max(steps, low), high)
        warnings.append(
            f"steps {steps} from the model is outside {low}–{high}; clamped to {clamped_steps}"
        )
        steps = clamped_steps
    guidance = _clamp_model_float("guidance", guidance, MODEL_GUIDANCE_RANGE, warnings)
    settings = replace(FLUX_DEV_DEFAULTS, denoise=denoise, steps=steps, guidance=guidance)
    return settings, warnings


def _clamp_model_float(
    name: str, value: float, bounds: tuple[float, float], warnings: list[str]
) -> float:
    low, high = bounds
    if not math.isfinite(value):
        fallback = getattr(FLUX_DEV_DEFAULTS, name)
        warnings.append(f"{name} {value} from the model is not a number; used {fallback:g}")
        return float(fallback)
    if low <= value <= high:
        return value
    clamped = min(max(value, low), high)
    warnings.append(f"{name} {value:g} from the model is outside {low:g}–{high:g}; clamped")
    return clamped


def validate_overrides(overrides: SamplerOverrides, *, field_prefix: str = "overrides") -> None:
    """Refuses overrides that cannot be clamped into meaning.

    Out-of-range numbers are fine (they are clamped with a warning); NaN, infinities and
    names that are not sampler identifiers are not.

    Args:
        overrides: The caller's overrides.
        field_prefix: Path of the overrides in the request, for the violations.

    Raises:
        InvalidArgumentError: Naming every bad field.
    """
    violations: list[FieldViolation] = []
    for name in ("denoise", "cfg", "guidance"):
        value = getattr(overrides, name)
        if value is not None and not math.isfinite(value):
            violations.append(
                FieldViolation(f"{field_prefix}.{name}", f"must be a finite number, got {value}")
            )
    for name in ("sampler_name", "scheduler"):
        value = getattr(overrides, name)
        if value is not None and not _NAME.fullmatch(value):
            violations.append(
                FieldViolation(
                    f"{field_prefix}.{name}",
                    f"must be a ComfyUI {name.replace('_', ' ')} such as "
                    f"{getattr(FLUX_DEV_DEFAULTS, name)!r} (lower-case letters, digits, "
                    f"underscores), got {value!r}",
                )
            )
    if violations:
        raise InvalidArgumentError("invalid sampler overrides", violations)


def apply_overrides(
    settings: SamplerSettings, overrides: SamplerOverrides, *, text_to_image: bool
) -> tuple[SamplerSettings, list[str]]:
    """Lets every given override win, clamped to what the sampler accepts.

    Call :func:`validate_overrides` first.

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
    if overrides.denoise is not None:
        if text_to_image and overrides.denoise != 1.0:
            notes.append(
                f"denoise override {overrides.denoise:g} ignored: text-to-image always uses 1.0"
            )
        else:
            changes["denoise"] = _clamp_override(
                "denoise", overrides.denoise, _VALID_DENOISE, settings.denoise, notes
            )
    if overrides.steps is not None:
        changes["steps"] = int(
            _clamp_override("steps", overrides.steps, _VALID_STEPS, settings.steps, notes)
        )
    if overrides.cfg is not None:
        changes["cfg"] = _clamp_override("cfg", overrides.cfg, _VALID_CFG, settings.cfg, notes)
    if overrides.guidance is not None:
        changes["guidance"] = _clamp_override(
            "guidance", overrides.guidance, _VALID_GUIDANCE, settings.guidance, notes
        )
    for name in ("sampler_name", "scheduler"):
        value = getattr(overrides, name)
        if value is not None:
            if value != getattr(settings, name):
                notes.append(f"{name} {value!r} from the caller's overrides replaces the plan's")
            changes[name] = value
    return replace(settings, **changes), notes  # type: ignore[arg-type]


def _clamp_override(
    name: str,
    value: float,
    bounds: tuple[float, float],
    planned: float,
    notes: list[str],
) -> float:
    low, high = bounds
    if low <= value <= high:
        if value != planned:
            notes.append(f"{name} {value:g} from the caller's overrides replaces {planned:g}")
        return value
    clamped = min(max(value, low), high)
    notes.append(
        f"{name} override {value:g} is outside the valid {low:g}–{high:g}; clamped to {clamped:g}"
    )
    return clamped
