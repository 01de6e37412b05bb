"""What can honestly be said about an image without a neural network.

The stand-in's "vision model" decodes the picture it was sent with Pillow and measures
it: size, orientation, the dominant colours (each pixel snapped to the nearest entry of a
fixed table of English colour names), brightness, contrast, the background colour (most
common along the border) and where the rest — "the subject" — sits. Replies built from
these facts change when the image changes, so a test can tell that the right image, and
the downscaled one, reached the model.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["NAMED_COLOURS", "ImageFacts", "UnreadableImageError", "analyse_image"]

NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "light gray": (200, 200, 200),
    "dark gray": (64, 64, 64),
    "red": (255, 0, 0),
    "maroon": (128, 0, 0),
    "orange": (255, 140, 0),
    "yellow": (255, 255, 0),
    "olive": (128, 128, 0),
    "green": (0, 200, 0),
    "dark green": (0, 100, 0),
    "teal": (0, 128, 128),
    "cyan": (0, 255, 255),
    "sky blue": (135, 206, 235),
    "blue": (0, 0, 255),
    "navy": (0, 0, 128),
    "purple": (128, 0, 128),
    "magenta": (255, 0, 255),
    "pink": (255, 182, 193),
    "brown": (139, 69, 19),
    "tan": (210, 180, 140),
    "beige": (245, 245, 220),
}
"""The palette every pixel is snapped to (nearest in RGB)."""

WARM_COLOURS = frozenset({"red", "maroon", "orange", "yellow", "pink", "brown", "tan", "beige"})
COOL_COLOURS = frozenset({"teal", "cyan", "sky blue", "blue", "navy", "purple", "green"})

# Analysis runs on a thumbnail: colour shares and positions do not need every pixel.
_SAMPLE_SIDE = 64
# A colour must cover this share of the picture to count as "dominant".
_DOMINANT_SHARE = 0.04


class UnreadableImageError(ValueError):
    """The bytes are not an image Pillow can decode."""


@dataclass(frozen=True)
class ImageFacts:
    """Measured properties of one image."""

    width: int
    height: int
    format: str
    colours: tuple[str, ...]
    """Dominant colour names, most common first."""
    colour_shares: tuple[float, ...]
    brightness: float
    """Mean luma, 0 (black) … 1 (white)."""
    contrast: float
    """Standard deviation of luma, 0 … 0.5."""
    background: str
    subject_colour: str | None
    subject_position: str
    subject_share: float
    flat: bool
    """Few distinct pixel values: a graphic rather than a photograph."""

    @property
    def orientation(self) -> str:
        """``landscape``, ``portrait`` or ``square``."""
        if self.width > self.height:
            return "landscape"
        if self.width < self.height:
            return "portrait"
        return "square"

    @property
    def aspect_ratio(self) -> str:
        """Width:height reduced, e.g. ``4:3``."""
        divisor = math.gcd(self.width, self.height) or 1
        return f"{self.width // divisor}:{self.height // divisor}"

    @property
    def brightness_word(self) -> str:
        """``dark``, ``dim``, ``balanced`` or ``bright``."""
        if self.brightness < 0.25:
            return "dark"
        if self.brightness < 0.45:
            return "dim"
        if self.brightness < 0.7:
            return "balanced"
        return "bright"

    @property
    def contrast_word(self) -> str:
        """``low``, ``medium`` or ``high``."""
        if self.contrast < 0.12:
            return "low"
        if self.contrast < 0.25:
            return "medium"
        return "high"

    @property
    def warmth(self) -> str:
        """``warm``, ``cool`` or ``neutral`` by the share of warm and cool colours."""
        warm = sum(
            s for c, s in zip(self.colours, self.colour_shares, strict=True) if c in WARM_COLOURS
        )
        cool = sum(
            s for c, s in zip(self.colours, self.colour_shares, strict=True) if c in COOL_COLOURS
        )
        if warm > cool + 0.1:
            return "warm"
        if cool > warm + 0.1:
            return "cool"
        return "neutral"

    @property
    def style(self) -> str:
        """``flat graphic illustration`` or ``photograph``."""
        return "flat graphic illustration" if self.flat else "photograph"

    @property
    def subject_size(self) -> str:
        """How much of the frame the subject fills: ``small``, ``medium`` or ``large``."""
        if self.subject_share < 0.1:
            return "small"
        if self.subject_share < 0.35:
            return "medium"
        return "large"


def analyse_image(data: bytes) -> ImageFacts:
    """Measure an encoded image.

    Args:
        data: PNG, JPEG, WebP, GIF… bytes as the model received them.

    Returns:
        The facts; sizes are those of the image as sent (after EXIF orientation).

    Raises:
        UnreadableImageError: When Pillow cannot decode the bytes.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image_format = opened.format or "UNKNOWN"
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImageError(str(exc)) from exc
    width, height = image.size
    sample = image.copy()
    sample.thumbnail((_SAMPLE_SIDE, _SAMPLE_SIDE))
    sample_width, sample_height = sample.size
    pixels: list[tuple[int, int, int]] = [
        sample.getpixel((x, y))  # type: ignore[misc]
        for y in range(sample_height)
        for x in range(sample_width)
    ]
    names = [_nearest_name(pixel) for pixel in pixels]
    total = len(names)
    counts = Counter(names)
    ranked = counts.most_common()
    dominant = [(name, n / total) for name, n in ranked if n / total >= _DOMINANT_SHARE][:5]
    if not dominant:
        dominant = [(ranked[0][0], ranked[0][1] / total)]
    lumas = [(0.299 * r + 0.587 * g + 0.114 * b) / 255 for r, g, b in pixels]
    mean = sum(lumas) / total
    contrast = math.sqrt(sum((v - mean) ** 2 for v in lumas) / total)
    border = [
        names[y * sample_width + x]
        for y in range(sample_height)
        for x in range(sample_width)
        if x in (0, sample_width - 1) or y in (0, sample_height - 1)
    ]
    background = Counter(border).most_common(1)[0][0]
    subject = [
        (x, y, names[y * sample_width + x])
        for y in range(sample_height)
        for x in range(sample_width)
        if names[y * sample_width + x] != background
    ]
    if subject:
        cx = sum(x for x, _, _ in subject) / len(subject) / max(1, sample_width - 1)
        cy = sum(y for _, y, _ in subject) / len(subject) / max(1, sample_height - 1)
        subject_colour: str | None = Counter(n for _, _, n in subject).most_common(1)[0][0]
        position = _position(cx, cy)
    else:
        subject_colour, position = None, "in the centre"
    return ImageFacts(
        width=width,
        height=height,
        format=image_format,
        colours=tuple(name for name, _ in dominant),
        colour_shares=tuple(round(share, 4) for _, share in dominant),
        brightness=round(mean, 4),
        contrast=round(contrast, 4),
        background=background,
        subject_colour=subject_colour,
        subject_position=position,
        subject_share=round(len(subject) / total, 4),
        flat=len(set(pixels)) <= 32,
    )


_NEAREST_CACHE: dict[tuple[int, int, int], str] = {}


def _nearest_name(pixel: tuple[int, int, int]) -> str:
    cached = _NEAREST_CACHE.get(pixel)
    if cached is not None:
        return cached
    r, g, b = pixel
    # Weighted RGB distance ("redmean"): closer to what people call the same colour than
    # plain Euclidean distance, and still a fixed, explainable rule.
    best_name, best_distance = "black", math.inf
    for name, (nr, ng, nb) in NAMED_COLOURS.items():
        mean_red = (r + nr) / 2
        distance = (
            (2 + mean_red / 256) * (r - nr) ** 2
            + 4 * (g - ng) ** 2
            + (2 + (255 - mean_red) / 256) * (b - nb) ** 2
        )
        if distance < best_distance:
            best_name, best_distance = name, distance
    if len(_NEAREST_CACHE) < 65536:
        _NEAREST_CACHE[pixel] = best_name
    return best_name


def _position(cx: float, cy: float) -> str:
    column = "left" if cx < 0.38 else "right" if cx > 0.62 else ""
    row = "top" if cy < 0.38 else "bottom" if cy > 0.62 else ""
    if not column and not row:
        return "in the centre"
    if not row:
        return f"on the {column}"
    if not column:
        return f"at the {row}"
    return f"at the {row} {column}"
