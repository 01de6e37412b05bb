"""The intent → denoise table and clamping."""

from __future__ import annotations

import math

from services.planner.intents import DENOISE_TABLE, UNRECOGNISED_DENOISE, Intent, clamp_denoise


def test_every_intent_has_a_range() -> None:
    assert set(DENOISE_TABLE) == set(Intent)


def test_table_holds_the_documented_ranges() -> None:
    ranges = {intent: (r.low, r.high) for intent, r in DENOISE_TABLE.items()}
    assert ranges[Intent.COLOR_CHANGE] == (0.80, 0.90)
    assert ranges[Intent.MATERIAL_CHANGE] == (0.75, 0.85)
    assert ranges[Intent.STYLE_TRANSFER] == (0.65, 0.80)
    assert ranges[Intent.ADD_OBJECT] == ranges[Intent.REMOVE_OBJECT] == (0.60, 0.75)
    assert ranges[Intent.LIGHTING_CHANGE] == (0.45, 0.60)
    assert ranges[Intent.MINOR_EDIT] == (0.35, 0.50)
    assert ranges[Intent.FULL_REIMAGINING] == (0.85, 0.95)
    assert ranges[Intent.TEXT_TO_IMAGE] == (1.0, 1.0)


def test_unrecognised_default_is_not_one_half() -> None:
    assert UNRECOGNISED_DENOISE == 0.68


def test_denoise_inside_the_range_passes_without_warning() -> None:
    assert clamp_denoise(Intent.COLOR_CHANGE, 0.84) == (0.84, None)


def test_denoise_above_the_range_is_clamped_with_a_warning() -> None:
    value, warning = clamp_denoise(Intent.COLOR_CHANGE, 1.7)
    assert value == 0.90
    assert warning is not None and "1.7" in warning and "0.90" in warning


def test_denoise_below_the_range_is_clamped_with_a_warning() -> None:
    value, warning = clamp_denoise(Intent.STYLE_TRANSFER, 0.2)
    assert value == 0.65
    assert warning is not None


def test_denoise_that_is_not_a_number_becomes_the_typical_value() -> None:
    value, warning = clamp_denoise(Intent.LIGHTING_CHANGE, math.nan)
    assert value == DENOISE_TABLE[Intent.LIGHTING_CHANGE].typical
    assert warning is not None
