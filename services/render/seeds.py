"""Seeds of a render's variants: the caller's seed or a random one, then seed + i.

KSampler takes seeds from 0 to 2^64 − 1. Variant ``i`` renders with ``seed + i`` so that
any single variant can be reproduced alone by sending its own seed with ``variants = 1``;
a range that would pass 2^64 − 1 is refused rather than wrapped, because a wrapped seed
could not be reproduced that way.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from services.common.request_rules import MAX_SEED

__all__ = ["MAX_SEED", "SeedRangeError", "variant_seeds"]


class SeedRangeError(ValueError):
    """The seeds of the variants would not fit in 0 … 2^64 − 1."""


def variant_seeds(
    seed: int | None,
    variants: int,
    *,
    randbelow: Callable[[int], int] = secrets.randbelow,
) -> list[int]:
    """The seed of each variant.

    Args:
        seed: The caller's seed of variant 0, or ``None`` for a random one.
        variants: How many variants, at least 1.
        randbelow: Source of random integers in ``[0, n)``, injectable for tests.

    Returns:
        ``[seed, seed + 1, …, seed + variants - 1]``.

    Raises:
        SeedRangeError: The caller's seed is negative or the last variant's seed would
            exceed :data:`MAX_SEED`.
    """
    if variants < 1:
        raise ValueError("variants must be at least 1")
    last_start = MAX_SEED - (variants - 1)
    if seed is None:
        # Drawn so that the whole range fits: a random seed must never be refused.
        seed = randbelow(last_start + 1)
    elif seed < 0:
        raise SeedRangeError(f"seed {seed} is negative; seeds run from 0 to {MAX_SEED}")
    elif seed > last_start:
        raise SeedRangeError(
            f"seed {seed} with {variants} variants would need seeds up to "
            f"{seed + variants - 1}, above {MAX_SEED}; use a seed of at most {last_start}"
        )
    return [seed + i for i in range(variants)]
