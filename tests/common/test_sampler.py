"""Flux-dev sampler settings: defaults, bounds, merging, and their wire form."""

from __future__ import annotations

import math

import pytest

from imagegen.common.v1 import common_pb2
from services.common.errors import FieldViolation
from services.common.sampler import (
    FLUX_DEV_DEFAULTS,
    IMG2IMG_DEFAULT_DENOISE,
    SamplerOverrides,
    SamplerSettings,
    apply_overrides,
    check_overrides,
    from_float32,
    overlay,
    overrides_from_proto,
    overrides_to_proto,
    resolve_settings,
    settings_to_proto,
)


def _fields(overrides: SamplerOverrides, *, bounded: bool) -> list[str]:
    violations: list[FieldViolation] = []
    check_overrides(overrides, "sampler", violations, bounded=bounded)
    return [v.field for v in violations]


def test_float32_noise_becomes_the_decimal_the_caller_wrote() -> None:
    wire = common_pb2.SamplerSettings(denoise=0.85).denoise
    assert wire != 0.85
    assert from_float32(wire) == 0.85


def test_float32_cleanup_leaves_nan_and_infinity_alone() -> None:
    assert math.isnan(from_float32(math.nan))
    assert from_float32(math.inf) == math.inf


def test_overrides_from_proto_keep_presence_and_clean_floats() -> None:
    message = common_pb2.SamplerSettings(denoise=0.3, steps=0, scheduler="beta")
    assert overrides_from_proto(message) == SamplerOverrides(denoise=0.3, steps=0, scheduler="beta")


def test_complete_settings_survive_the_wire() -> None:
    settings = SamplerSettings(0.85, 28, 1.0, 2.5, "dpmpp_2m", "sgm_uniform")
    message = settings_to_proto(settings)
    assert all(message.HasField(name) for name in vars(settings))
    assert resolve_settings(overrides_from_proto(message), text_to_image=False) == settings


def test_overrides_to_proto_sets_only_what_was_given() -> None:
    message = overrides_to_proto(SamplerOverrides(steps=6))
    assert [field.name for field, _ in message.ListFields()] == ["steps"]


def test_unbounded_check_refuses_only_what_cannot_be_clamped() -> None:
    fine = SamplerOverrides(denoise=1.5, steps=500, cfg=0.0, guidance=250.0)
    assert _fields(fine, bounded=False) == []
    broken = SamplerOverrides(denoise=math.nan, cfg=math.inf, sampler_name="", scheduler="a b")
    assert _fields(broken, bounded=False) == [
        "sampler.denoise",
        "sampler.cfg",
        "sampler.sampler_name",
        "sampler.scheduler",
    ]


def test_bounded_check_refuses_out_of_range_numbers_field_by_field() -> None:
    overrides = SamplerOverrides(denoise=1.5, steps=0, cfg=0.5, guidance=100.5)
    assert _fields(overrides, bounded=True) == [
        "sampler.denoise",
        "sampler.steps",
        "sampler.cfg",
        "sampler.guidance",
    ]


def test_the_bounds_themselves_are_accepted() -> None:
    low = SamplerOverrides(denoise=0.0, steps=1, cfg=1.0, guidance=0.0)
    high = SamplerOverrides(denoise=1.0, steps=100, cfg=30.0, guidance=100.0)
    assert _fields(low, bounded=True) == [] and _fields(high, bounded=True) == []


def test_a_long_bad_name_is_echoed_cut_short() -> None:
    violations: list[FieldViolation] = []
    check_overrides(SamplerOverrides(sampler_name="X" * 10_000), "s", violations, bounded=True)
    (violation,) = violations
    assert len(violation.description) < 300


def test_render_defaults_follow_flux_dev() -> None:
    settings = resolve_settings(SamplerOverrides(), text_to_image=False)
    assert settings == SamplerSettings(IMG2IMG_DEFAULT_DENOISE, 25, 1.0, 3.5, "euler", "simple")


def test_text_to_image_always_denoises_fully() -> None:
    settings = resolve_settings(SamplerOverrides(denoise=0.4, steps=8), text_to_image=True)
    assert (settings.denoise, settings.steps) == (1.0, 8)


def test_overrides_win_over_the_plan_and_say_so() -> None:
    settings, notes = apply_overrides(
        FLUX_DEV_DEFAULTS, SamplerOverrides(steps=30, scheduler="beta"), text_to_image=False
    )
    assert (settings.steps, settings.scheduler) == (30, "beta")
    assert len(notes) == 2


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (SamplerOverrides(steps=500), ("steps", 100)),
        (SamplerOverrides(steps=0), ("steps", 1)),
        (SamplerOverrides(cfg=0.0), ("cfg", 1.0)),
        (SamplerOverrides(denoise=1.5), ("denoise", 1.0)),
    ],
)
def test_out_of_range_overrides_are_clamped_with_a_note(
    overrides: SamplerOverrides, expected: tuple[str, float]
) -> None:
    settings, notes = apply_overrides(FLUX_DEV_DEFAULTS, overrides, text_to_image=False)
    name, value = expected
    assert getattr(settings, name) == value
    assert any("clamped" in note for note in notes)


def test_an_overlay_keeps_what_the_top_does_not_give() -> None:
    plan = SamplerOverrides(denoise=0.8, steps=20, sampler_name="euler")
    merged = overlay(plan, SamplerOverrides(steps=6, scheduler="beta"))
    assert merged == SamplerOverrides(denoise=0.8, steps=6, sampler_name="euler", scheduler="beta")
