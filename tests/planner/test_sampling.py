"""Sampler settings: the model's choices clamped, the caller's overrides winning."""

from __future__ import annotations

import math

import pytest

from services.common.errors import InvalidArgumentError
from services.planner.intents import Intent
from services.planner.sampling import (
    FLUX_DEV_DEFAULTS,
    SamplerOverrides,
    apply_overrides,
    settle_model_choices,
    validate_overrides,
)


def test_model_choices_in_range_pass_unchanged() -> None:
    settings, warnings = settle_model_choices(
        Intent.COLOR_CHANGE, denoise=0.85, steps=28, guidance=3.5
    )
    assert (settings.denoise, settings.steps, settings.guidance) == (0.85, 28, 3.5)
    assert (settings.cfg, settings.sampler_name, settings.scheduler) == (1.0, "euler", "simple")
    assert warnings == []


def test_denoise_1_7_and_steps_0_from_the_model_are_clamped_with_warnings() -> None:
    settings, warnings = settle_model_choices(
        Intent.COLOR_CHANGE, denoise=1.7, steps=0, guidance=3.5
    )
    assert settings.denoise == 0.90
    assert settings.steps == 20
    assert any("denoise 1.7" in w for w in warnings)
    assert any("steps 0" in w for w in warnings)


def test_guidance_from_the_model_is_clamped() -> None:
    settings, warnings = settle_model_choices(
        Intent.MINOR_EDIT, denoise=0.4, steps=25, guidance=30.0
    )
    assert settings.guidance == 5.0
    assert warnings


def test_an_override_wins_and_is_reported() -> None:
    planned = FLUX_DEV_DEFAULTS
    settings, notes = apply_overrides(planned, SamplerOverrides(denoise=0.3), text_to_image=False)
    assert settings.denoise == 0.3
    assert any("denoise 0.3" in n for n in notes)


def test_an_out_of_range_override_is_clamped_with_a_warning() -> None:
    settings, notes = apply_overrides(
        FLUX_DEV_DEFAULTS, SamplerOverrides(steps=500, cfg=0.0, guidance=250.0), text_to_image=False
    )
    assert (settings.steps, settings.cfg, settings.guidance) == (100, 1.0, 100.0)
    assert len(notes) == 3
    assert all("clamped" in n for n in notes)


def test_unset_overrides_change_nothing() -> None:
    settings, notes = apply_overrides(FLUX_DEV_DEFAULTS, SamplerOverrides(), text_to_image=False)
    assert settings == FLUX_DEV_DEFAULTS
    assert notes == []


def test_text_to_image_keeps_full_denoise_against_an_override() -> None:
    settings, notes = apply_overrides(
        FLUX_DEV_DEFAULTS, SamplerOverrides(denoise=0.5), text_to_image=True
    )
    assert settings.denoise == 1.0
    assert any("ignored" in n for n in notes)


def test_sampler_and_scheduler_overrides_win() -> None:
    settings, _ = apply_overrides(
        FLUX_DEV_DEFAULTS,
        SamplerOverrides(sampler_name="dpmpp_2m", scheduler="beta"),
        text_to_image=False,
    )
    assert (settings.sampler_name, settings.scheduler) == ("dpmpp_2m", "beta")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (SamplerOverrides(denoise=math.nan), "overrides.denoise"),
        (SamplerOverrides(cfg=math.inf), "overrides.cfg"),
        (SamplerOverrides(sampler_name=""), "overrides.sampler_name"),
        (SamplerOverrides(scheduler="simple; rm -rf"), "overrides.scheduler"),
    ],
)
def test_overrides_that_cannot_be_clamped_are_refused(
    overrides: SamplerOverrides, field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_overrides(overrides)
    assert [v.field for v in caught.value.violations] == [field]
