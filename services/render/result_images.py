"""Turning what ComfyUI produced into what the caller receives.

Results: ComfyUI's PNG at the render size (multiples of 16, perhaps scaled down to the
megapixel cap) is resized to the exact output size with Lanczos and encoded once, in the
requested format, with the metadata (:mod:`services.render.result_metadata`); a PNG that
already has the output size only has its chunks rewritten.

| format | encoding                                        | metadata            |
|--------|-------------------------------------------------|---------------------|
| PNG    | lossless, alpha kept                            | text chunks         |
| JPEG   | ``quality``, 4:2:0, no alpha (flattened)        | EXIF + XMP          |
| WEBP   | lossy at ``quality``, alpha kept                | EXIF + XMP          |

With a mask, the resized result is composited over the source with the mask feathered
*inward* (:func:`keep_outside_mask`), so every pixel the mask leaves black is the
source's own and the seam inside the mask is soft.

Previews: sampler frames (JPEG, or PNG on some servers) are passed on as JPEG with their
size. Both decode images, so call them in a thread.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image, ImageFilter

from services.common.request_rules import DEFAULT_OUTPUT_QUALITY
from services.render.dimensions import Size
from services.render.result_metadata import (
    PARAMETERS_KEY,
    encode_png,
    exif_block,
    jpeg_xmp_packet,
    with_text_chunks,
    xmp_packet,
)

__all__ = [
    "RESIZE_FILTER",
    "Encoding",
    "FinishedImage",
    "OutputFormat",
    "finish_result",
    "keep_outside_mask",
    "preview_jpeg",
]

FEATHER_FRACTION = 0.004
"""Gaussian sigma of the mask's feather, as a fraction of the image's shorter side
(4 px on a 1024 px side): wide enough to hide the seam, narrow next to an object."""


class OutputFormat(StrEnum):
    """The encoding of the results."""

    PNG = "PNG"
    JPEG = "JPEG"
    WEBP = "WEBP"

    @property
    def mime_type(self) -> str:
        """Its MIME type, e.g. ``image/webp``."""
        return f"image/{self.value.lower()}"


@dataclass(frozen=True)
class Encoding:
    """How a result is encoded.

    Attributes:
        format: PNG, JPEG or WEBP.
        quality: JPEG/WEBP quality 1 to 100 (ignored for PNG).
    """

    format: OutputFormat = OutputFormat.PNG
    quality: int = DEFAULT_OUTPUT_QUALITY


RESIZE_FILTER = "lanczos"
"""The filter that maps the render size back to the output size (named in the metadata)."""


@dataclass(frozen=True)
class FinishedImage:
    """An encoded image, its size and MIME type."""

    data: bytes
    width: int
    height: int
    mime_type: str = "image/png"


def keep_outside_mask(result: Image.Image, source: Image.Image, mask: Image.Image) -> Image.Image:
    """The result inside the mask, the source outside it, blended across a soft seam.

    The mask is eroded by three sigmas before it is blurred, so the feather lies inside
    the white area: a pixel the mask leaves black keeps the source's value exactly.

    Args:
        result: The rendered image.
        source: The source, upright RGB; resized to the result's size when it differs.
        mask: One channel, 255 = change; resized to the result's size when it differs.

    Returns:
        The composite, in the result's mode and size.
    """
    size = result.size
    if source.size != size:
        source = source.resize(size, Image.Resampling.LANCZOS)
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    sigma = max(1.0, min(size) * FEATHER_FRACTION)
    reach = 3 * round(sigma)
    # Repeated 3×3 erosions: a square erosion of the same reach, far cheaper than one
    # wide rank filter.
    for _ in range(reach):
        mask = mask.filter(ImageFilter.MinFilter(3))
    feathered = mask.filter(ImageFilter.GaussianBlur(sigma))
    return Image.composite(result, source.convert(result.mode), feathered)


def finish_result(
    raw: bytes,
    output_size: Size,
    metadata: Mapping[str, str],
    encoding: Encoding = Encoding(),
    keep: tuple[Image.Image, Image.Image] | None = None,
) -> FinishedImage:
    """Resizes a rendered image to the output size, encodes it and embeds the metadata.

    Args:
        raw: The image file ComfyUI saved.
        output_size: The size to return.
        metadata: Key → text (see :mod:`services.render.result_metadata`).
        encoding: Format and quality.
        keep: ``(source, mask)`` to keep the source outside the mask
            (:func:`keep_outside_mask`); ``None`` = the result as rendered.

    Returns:
        The encoded image, exactly ``output_size``.
    """
    size = (output_size.width, output_size.height)
    fmt = encoding.format
    with Image.open(io.BytesIO(raw)) as opened:
        if (
            fmt is OutputFormat.PNG
            and opened.format == "PNG"
            and opened.size == size
            and keep is None
        ):
            # Already the output size: add the metadata without decoding the pixels.
            return FinishedImage(with_text_chunks(raw, metadata), *size, fmt.mime_type)
        opened.load()
        has_alpha = opened.mode in ("RGBA", "LA", "P") and fmt is not OutputFormat.JPEG
        image = opened.convert("RGBA" if has_alpha else "RGB")
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    if keep is not None:
        image = keep_outside_mask(image, *keep)
    if fmt is OutputFormat.PNG:
        return FinishedImage(encode_png(image, metadata), *size, fmt.mime_type)
    out = io.BytesIO()
    exif = exif_block(metadata.get(PARAMETERS_KEY, ""))
    if fmt is OutputFormat.JPEG:
        xmp = jpeg_xmp_packet(metadata)
        image.save(out, format="JPEG", quality=encoding.quality, exif=exif, xmp=xmp)
    else:
        # method 4 of 6: Pillow's default speed/size trade-off.
        xmp = xmp_packet(metadata)
        image.save(out, format="WEBP", quality=encoding.quality, exif=exif, xmp=xmp, method=4)
    return FinishedImage(out.getvalue(), *size, fmt.mime_type)


def preview_jpeg(frame: bytes, mime_type: str) -> FinishedImage:
    """A preview frame as JPEG.

    Args:
        frame: The encoded preview from the websocket.
        mime_type: Its type as ComfyUI announced it.

    Returns:
        The JPEG (the frame itself when it already is one) and its size.
    """
    with Image.open(io.BytesIO(frame)) as opened:
        width, height = opened.size
        if mime_type == "image/jpeg" and opened.format == "JPEG":
            return FinishedImage(frame, width, height, "image/jpeg")
        opened.load()
        rgb = opened.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=85)
    return FinishedImage(out.getvalue(), width, height, "image/jpeg")
