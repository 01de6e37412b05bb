"""An analysis measured from the image itself, for when the vision model cannot give one.

Nothing here is guessed: size and orientation, the dominant colours (palette quantisation,
each palette entry named after the nearest colour of a small named palette in CIE Lab),
brightness, contrast and colour cast, and the camera's EXIF fields when present. Subjects
and materials cannot be measured, so they are left empty and reported missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from PIL import Image, ImageStat

from services.vision.analysis import Analysis, AnalysisSource, empty_fields

__all__ = [
    "NAMED_COLORS",
    "Measurements",
    "dominant_colors",
    "fallback_analysis",
    "measure",
    "name_color",
]

# A small palette of plain English names; sRGB values of each name's typical shade.
NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (15, 15, 15),
    "dark grey": (70, 70, 70),
    "grey": (128, 128, 128),
    "light grey": (190, 190, 190),
    "white": (245, 245, 245),
    "red": (200, 30, 35),
    "dark red": (120, 20, 25),
    "pink": (240, 160, 180),
    "orange": (240, 130, 30),
    "brown": (130, 80, 40),
    "dark brown": (70, 42, 25),
    "beige": (215, 190, 150),
    "cream": (245, 235, 205),
    "yellow": (240, 215, 40),
    "olive": (120, 120, 40),
    "green": (50, 150, 60),
    "dark green": (20, 80, 35),
    "teal": (20, 125, 125),
    "light blue": (140, 190, 230),
    "blue": (40, 80, 200),
    "navy": (20, 30, 90),
    "purple": (120, 50, 160),
    "magenta": (200, 40, 160),
}

# Working size of the measurements: colour shares and luminance statistics are stable
# well below this, and quantising 128×128 pixels takes about a millisecond.
_MEASURE_SIDE = 128
_PALETTE_SIZE = 8
_MIN_SHARE = 0.05
_MAX_COLORS = 5


@dataclass(frozen=True)
class Measurements:
    """What the pixels and the file say about an image.

    Attributes:
        colors: Dominant colour names with their share of the pixels, largest first.
        brightness: Mean luminance, 0.0 (black) to 1.0 (white).
        contrast: Standard deviation of the luminance, 0.0 to 0.5.
        warmth: Mean red minus mean blue, -1.0 (cool) to 1.0 (warm).
    """

    colors: tuple[tuple[str, float], ...]
    brightness: float
    contrast: float
    warmth: float


def _linear(channel: float) -> float:
    c = channel / 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _lab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """sRGB to CIE L*a*b* (D65): distances there follow perceived colour differences."""
    r, g, b = (_linear(c) for c in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


_NAMED_LAB = {name: _lab(rgb) for name, rgb in NAMED_COLORS.items()}


def name_color(rgb: tuple[int, int, int]) -> str:
    """The name of the nearest colour of :data:`NAMED_COLORS` (CIE76 distance).

    >>> name_color((250, 0, 0))
    'red'
    """
    lab = _lab(rgb)
    return min(
        _NAMED_LAB,
        key=lambda name: sum((p - q) ** 2 for p, q in zip(lab, _NAMED_LAB[name], strict=True)),
    )


def dominant_colors(image: Image.Image) -> tuple[tuple[str, float], ...]:
    """The image's dominant colour names and their share of the pixels.

    The image is quantised to a few palette entries (median cut), each entry is named,
    and entries with the same name are pooled.

    Args:
        image: An RGB image (downscale it first; see :func:`measure`).

    Returns:
        Up to five (name, share) pairs, largest first; names under 5 % are left out
        unless nothing else remains.
    """
    quantised = image.quantize(colors=_PALETTE_SIZE, method=Image.Quantize.MEDIANCUT)
    palette = quantised.getpalette() or []
    counts = quantised.getcolors() or []
    total = sum(count for count, _ in counts) or 1
    shares: dict[str, float] = {}
    for count, index in counts:
        assert isinstance(index, int)  # a P image's colours are palette indices
        rgb = (palette[3 * index], palette[3 * index + 1], palette[3 * index + 2])
        name = name_color(rgb)
        shares[name] = shares.get(name, 0.0) + count / total
    ranked = sorted(shares.items(), key=lambda item: item[1], reverse=True)
    kept = [(name, share) for name, share in ranked if share >= _MIN_SHARE] or ranked[:1]
    return tuple(kept[:_MAX_COLORS])


def measure(image: Image.Image) -> Measurements:
    """Colours, brightness, contrast and colour cast of an upright RGB image."""
    small = image.copy()
    small.thumbnail((_MEASURE_SIDE, _MEASURE_SIDE))
    luminance = ImageStat.Stat(small.convert("L"))
    channels = ImageStat.Stat(small)
    red, _, blue = channels.mean
    return Measurements(
        colors=dominant_colors(small),
        brightness=luminance.mean[0] / 255.0,
        contrast=luminance.stddev[0] / 255.0,
        warmth=(red - blue) / 255.0,
    )


def _orientation(width: int, height: int) -> str:
    ratio = width / height
    if ratio > 1.05:
        return "landscape"
    if ratio < 1 / 1.05:
        return "portrait"
    return "square"


def _brightness_words(m: Measurements) -> str:
    level = (
        "dark"
        if m.brightness < 0.25
        else "dim"
        if m.brightness < 0.45
        else "moderately bright"
        if m.brightness < 0.65
        else "bright"
    )
    contrast = "low" if m.contrast < 0.12 else "moderate" if m.contrast < 0.22 else "high"
    tone = "warm" if m.warmth > 0.08 else "cool" if m.warmth < -0.08 else "neutral"
    return f"{level}, {tone}-toned, {contrast} contrast"


def _camera_words(exif: Mapping[str, str]) -> str:
    camera = " ".join(v for v in (exif.get("Make"), exif.get("Model")) if v)
    settings = [
        f"f/{exif['FNumber']}" if "FNumber" in exif else "",
        f"{exif['ExposureTime']} s" if "ExposureTime" in exif else "",
        f"ISO {exif['ISO']}" if "ISO" in exif else "",
        f"{exif['FocalLength']} mm" if "FocalLength" in exif else "",
    ]
    shot = ", ".join(s for s in settings if s)
    if camera and shot:
        return f"{camera} ({shot})"
    return camera or shot


def fallback_analysis(
    *,
    measurements: Measurements,
    width: int,
    height: int,
    image_sha256: str,
    exif: Mapping[str, str],
    reason: str,
) -> Analysis:
    """An analysis built from measurements alone, flagged as a fallback.

    Args:
        measurements: From :func:`measure`.
        width: Upright width in pixels.
        height: Upright height in pixels.
        image_sha256: Hex digest of the image bytes.
        exif: Camera fields (``ValidatedImage.exif()``).
        reason: Why the model was not used; becomes part of the warning.

    Returns:
        An analysis with ``source`` METADATA_FALLBACK, the fields measurements cannot
        give (subjects, materials; the style without camera data) empty and reported
        in ``missing_fields``, and a warning naming the reason.
    """
    names = [name for name, _ in measurements.colors]
    orientation = _orientation(width, height)
    light = _brightness_words(measurements)
    camera = _camera_words(exif)
    colour_text = ", ".join(f"{name} ({share:.0%})" for name, share in measurements.colors)
    description = (
        f"A {orientation} image of {width}×{height} pixels, mostly {colour_text}; {light}."
    )
    if camera:
        description += f" Taken with {camera}."
    analysis = Analysis(
        description=description,
        source=AnalysisSource.METADATA_FALLBACK,
        width=width,
        height=height,
        image_sha256=image_sha256,
        colors=tuple(names),
        style="photograph" if exif.get("Make") or exif.get("Model") else "",
        lighting=light,
        composition=f"{orientation} frame, aspect ratio {width / height:.2f}:1",
        warnings=(f"analysis measured from the image itself, not by the vision model: {reason}",),
    )
    # Measurements cannot see subjects or materials (nor a style without camera data).
    return replace(analysis, missing_fields=empty_fields(analysis))
