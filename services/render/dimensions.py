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
| ``upscale_sizes(Size(300, 200), 2.0, 4.0)`` | output 600x400, render 608x400        |

Which of these applies is the workflow's output size policy (:class:`SizePolicy`).

One megapixel here is 1,000,000 pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "FLUX_MULTIPLE",
    "MEGAPIXEL",
    "Size",
    "SizePlan",
    "SizePolicy",
    "Txt2ImgBounds",
    "render_size_for",
    "snap_to_multiple",
    "source_sizes",
    "txt2img_size",
    "upscale_sizes",
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


class SizePolicy(StrEnum):
    """What decides the size of a workflow's results.

    | policy      | output size                         | default for |
    |-------------|-------------------------------------|-------------|
    | ``source``  | the source image's                  | img2img     |
    | ``scale``   | the source's × the request's factor | —           |
    | ``requested`` | the request's width and height    | txt2img     |
    """

    SOURCE = "source"
    SCALE = "scale"
    REQUESTED = "requested"


@dataclass(frozen=True)
class SizePlan:
    """The sizes of one render.

    Attributes:
        render: What Flux draws (multiples of 16).
        output: What the caller gets back.
        capped: True when the megapixel cap made the render smaller than the output
            wanted (the result is resized up to it, or the upscale factor was lowered).
    """

    render: Size
    output: Size
    capped: bool = False


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


def _shrunk_by_cap(render: Size, wanted: Size, multiple: int) -> bool:
    # Snapping alone moves a side by less than one step; more than that is the cap.
    return render.width < wanted.width - multiple or render.height < wanted.height - multiple


def source_sizes(source: Size, cap_mp: float, multiple: int = FLUX_MULTIPLE) -> SizePlan:
    """The sizes under the ``source`` policy: returned at the source's size.

    Args:
        source: The source image's size.
        cap_mp: Largest render area in megapixels.
        multiple: The step, 16 for Flux.

    Returns:
        The render size from :func:`render_size_for`, the source's size as output.
    """
    render = render_size_for(source, cap_mp, multiple)
    return SizePlan(render, source, _shrunk_by_cap(render, source, multiple))


def upscale_sizes(
    source: Size, factor: float, cap_mp: float, multiple: int = FLUX_MULTIPLE
) -> SizePlan:
    """The sizes under the ``scale`` policy: the source enlarged by ``factor``.

    When the enlarged image would be above the cap, the factor is lowered until it
    fits (aspect kept): the result is what the GPU can draw, not a blurred stretch of it.

    Args:
        source: The source image's size.
        factor: The requested enlargement.
        cap_mp: Largest render (and output) area in megapixels.
        multiple: The step, 16 for Flux.

    Returns:
        The output (``source × factor``, rounded) and the render size (the output
        snapped to the step, within the cap); ``capped`` when the factor was lowered.
    """
    cap_pixels = cap_mp * MEGAPIXEL
    effective = min(factor, math.sqrt(cap_pixels / source.pixels))
    output = Size(
        max(1, math.floor(source.width * effective + 0.5)),
        max(1, math.floor(source.height * effective + 0.5)),
    )
    if output.pixels > cap_pixels:
        output = Size(
            max(1, math.floor(source.width * effective)),
            max(1, math.floor(source.height * effective)),
        )
    render = _fit_under_cap(output.width, output.height, cap_pixels, multiple)
    return SizePlan(render, output, effective < factor)


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
