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
The defaults, bounds and override merging are shared with the gateway and the render
service (:mod:`services.common.sampler`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from services.common.errors import FieldViolation, InvalidArgumentError
from services.common.sampler import (
    FLUX_DEV_DEFAULTS,
    SamplerOverrides,
    SamplerSettings,
    apply_overrides,
    check_overrides,
)
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


MODEL_STEPS_RANGE = (20, 30)
"""Steps the model may choose: below 20 Flux-dev leaves noise, above 30 adds only time."""

MODEL_GUIDANCE_RANGE = (1.5, 5.0)
"""Flux guidance the model may choose: ~2 looks most photographic, ~4.5 follows the
prompt most literally; beyond that images burn."""


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
    check_overrides(overrides, field_prefix, violations, bounded=False)
    if violations:
        raise InvalidArgumentError("invalid sampler overrides", violations)
