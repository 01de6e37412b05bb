"""Variant seeds: seed + i, random when unset, never wrapping past 2^64 - 1."""

from __future__ import annotations

import pytest

from services.render.seeds import MAX_SEED, SeedRangeError, variant_seeds


def test_variant_i_uses_seed_plus_i() -> None:
    assert variant_seeds(42, 3) == [42, 43, 44]


def test_the_last_seed_may_be_the_maximum() -> None:
    assert variant_seeds(MAX_SEED - 1, 2) == [MAX_SEED - 1, MAX_SEED]


def test_a_range_past_the_maximum_is_refused() -> None:
    with pytest.raises(SeedRangeError):
        variant_seeds(MAX_SEED, 2)


def test_a_random_seed_leaves_room_for_every_variant() -> None:
    seeds = variant_seeds(None, 8, randbelow=lambda n: n - 1)
    assert seeds[-1] == MAX_SEED


def test_random_seeds_differ_between_calls() -> None:
    assert variant_seeds(None, 1) != variant_seeds(None, 1)
