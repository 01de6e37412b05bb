"""The copy of a source image that is sent to the vision model.

LLaVA on Ollama looks at one ~336 px CLIP view of the image, so pixels beyond a few
hundred per side only cost encoding, transfer and decoding time. The copy is upright
(EXIF orientation applied, since the model never reads EXIF), at most ``max_side`` on its
longest side, JPEG, and plain base64 without a ``data:`` prefix (each adapter wraps it as
its server wants).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image

__all__ = ["ModelImage", "downscaled", "encode_for_model"]


@dataclass(frozen=True)
class ModelImage:
    """An image ready for a :class:`services.common.llm.ChatImage`.

    Attributes:
        base64: Standard base64 of the JPEG bytes, no ``data:`` prefix.
        width: Width of the copy in pixels.
        height: Height of the copy in pixels.
        jpeg_bytes: Size of the JPEG, for logs.
    """

    base64: str
    width: int
    height: int
    jpeg_bytes: int


def downscaled(upright: Image.Image, *, max_side: int) -> Image.Image:
    """A new image at most ``max_side`` on its longest side (never upscaled).

    Large sources are first reduced by whole factors (``Image.reduce``), which reads each
    pixel once and allocates only the reduced copy, then resampled with Pillow's
    antialiased bilinear filter, so the work and memory beyond the source are those of
    the small result. Lanczos would cost twice as much for nothing the model keeps: its
    own preprocessing resizes the copy again, to about half its size.

    Args:
        upright: The decoded source, EXIF orientation applied, RGB; left untouched (the
            caller can close it as soon as this returns).
        max_side: Longest side of the result in pixels.

    Returns:
        The caller's own copy.
    """
    scale = max_side / max(upright.size)
    if scale >= 1:
        return upright.copy()
    size = (max(1, round(upright.width * scale)), max(1, round(upright.height * scale)))
    return upright.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def encode_for_model(upright: Image.Image, *, max_side: int, quality: int) -> ModelImage:
    """Downscale (never upscale) to ``max_side`` and encode as JPEG.

    Args:
        upright: The decoded source, EXIF orientation applied, RGB.
        max_side: Longest side of the copy in pixels.
        quality: JPEG quality, 1 to 100.

    Returns:
        The encoded copy.
    """
    copy = downscaled(upright, max_side=max_side)
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=quality)
    data = buffer.getvalue()
    return ModelImage(
        base64=base64.b64encode(data).decode("ascii"),
        width=copy.width,
        height=copy.height,
        jpeg_bytes=len(data),
    )
