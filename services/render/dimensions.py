"""Render sizes: what Flux is asked to draw, and what the caller gets back.

Flux works on 2×2 patches of a latent that the VAE downsamples by 8, so sizes that are
multiples of 16 px go through without padding or silent cropping. ``MAX_RESOLUTION`` of
ComfyUI is far above what Flux-dev draws well; quality falls off beyond about 2 MP, which
is why image-to-image renders are scaled down (never up) to a megapixel cap.

| call                                        | result                               |
|---------------------------------------------|--------------------------------------|
| ``snap_to_multiple(1000)``                  | 1008                                 |
| ``render_size_for(Size(1000, 750), 2.0)``   | ``Size(1008, 752)`` (under the cap)  |
| ``render_size_for(Size(3000, 2000), 2.0)``  | ``Size(1728, 1152)`` (≤ 2 MP)        |
| ``txt2img_size(1000, 600, bounds)``         | ``Size(1008, 608)``                  |

One megapixel here is 1,000,000 pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "FLUX_MULTIPLE",
    "MEGAPIXEL",
    "Size",
    "Txt2ImgBounds",
    "render_size_for",
    "snap_to_multiple",
    "txt2img_size",
]

FLUX_MULTIPLE = 16
"""Sizes Flux takes without padding: VAE factor 8 × transformer patch 2."""

MEGAPIXEL = 1_000_000


@dataclass(frozen=True)
class Size:
    """A width and height in pixels."""

    width: int
    height: int

    @property
    def pixels(self) -> int:
        """Width × height."""
        return self.width * self.height

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class Txt2ImgBounds:
    """Limits of a text-to-image size.

    Attributes:
        default_side: Side used when the caller gives 0.
        min_side: Smallest side after snapping.
        max_side: Largest side after snapping.
        cap_mp: Largest area in megapixels; larger requests are scaled down, aspect kept.
    """

    default_side: int = 1024
    min_side: int = 256
    max_side: int = 2048
    cap_mp: float = 2.0


def snap_to_multiple(size: float, multiple: int = FLUX_MULTIPLE) -> int:
    """Rounds a side to the nearest multiple (halves round up), never below one multiple.

    Args:
        size: The side in pixels (may be fractional after scaling).
        multiple: The step, 16 for Flux.

    Returns:
        The snapped side, at least ``multiple``.
    """
    return max(multiple, math.floor(size / multiple + 0.5) * multiple)


def _floor_to_multiple(size: float, multiple: int) -> int:
    return max(multiple, math.floor(size / multiple) * multiple)


def _fit_under_cap(width: float, height: float, cap_pixels: float, multiple: int) -> Size:
    """Snaps a size to the step, staying within ``cap_pixels`` with the aspect kept."""
    scale = min(1.0, math.sqrt(cap_pixels / (width * height)))
    snapped = Size(
        snap_to_multiple(width * scale, multiple), snap_to_multiple(height * scale, multiple)
    )
    if snapped.pixels <= cap_pixels:
        return snapped
    # Rounding to the nearest step pushed the area over the cap: round down instead.
    return Size(
        _floor_to_multiple(width * scale, multiple), _floor_to_multiple(height * scale, multiple)
    )


def render_size_for(source: Size, cap_mp: float, multiple: int = FLUX_MULTIPLE) -> Size:
    """The size an image-to-image render is drawn at.

    The source's own size snapped to the step; scaled down (aspect kept) only when the
    source is above the megapixel cap. Never scaled up: the result is resized back to
    the source's exact size afterwards.

    Args:
        source: The source image's size (after EXIF orientation).
        cap_mp: Largest render area in megapixels.
        multiple: The step, 16 for Flux.

    Returns:
        A size whose sides are multiples of ``multiple`` and whose area is within the cap.
    """
    return _fit_under_cap(source.width, source.height, cap_mp * MEGAPIXEL, multiple)


def txt2img_size(width: int, height: int, bounds: Txt2ImgBounds) -> Size:
    """The size a text-to-image render is drawn at.

    Args:
        width: Requested width; 0 means the default side.
        height: Requested height; 0 means the default side.
        bounds: Default, limits and megapixel cap.

    Returns:
        The requested size snapped to 16, each side clamped to the bounds, then scaled
        down (aspect kept) if its area is above the cap.
    """
    wanted_w = width or bounds.default_side
    wanted_h = height or bounds.default_side
    clamped_w = min(max(snap_to_multiple(wanted_w), bounds.min_side), bounds.max_side)
    clamped_h = min(max(snap_to_multiple(wanted_h), bounds.min_side), bounds.max_side)
    return _fit_under_cap(clamped_w, clamped_h, bounds.cap_mp * MEGAPIXEL, FLUX_MULTIPLE)
