"""Turning what ComfyUI produced into what the caller receives.

Results: ComfyUI's PNG at the render size (multiples of 16, perhaps scaled down to the
megapixel cap) is resized back to the exact output size with Lanczos and re-encoded with
the metadata chunks; when it already has the output size only the chunks are rewritten.
Previews: sampler frames (JPEG, or PNG on some servers) are passed on as JPEG with their
size. Both decode images, so call them in a thread.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from services.render.dimensions import Size
from services.render.pnginfo import encode_png, with_text_chunks

__all__ = ["RESIZE_FILTER", "FinishedImage", "finish_result", "preview_jpeg"]

RESIZE_FILTER = "lanczos"
"""The filter that maps the render size back to the output size (named in the metadata)."""


@dataclass(frozen=True)
class FinishedImage:
    """An encoded image and its size."""

    data: bytes
    width: int
    height: int


def finish_result(raw: bytes, output_size: Size, chunks: Mapping[str, str]) -> FinishedImage:
    """Resizes a rendered image to the output size and embeds the metadata.

    Args:
        raw: The image file ComfyUI saved.
        output_size: The size to return (the source's for image-to-image).
        chunks: PNG text chunks to write.

    Returns:
        The PNG, exactly ``output_size``.
    """
    with Image.open(io.BytesIO(raw)) as opened:
        if opened.format == "PNG" and opened.size == (output_size.width, output_size.height):
            # Already the output size: add the metadata without decoding the pixels.
            return FinishedImage(
                with_text_chunks(raw, chunks), output_size.width, output_size.height
            )
        opened.load()
        image = opened.convert("RGBA" if opened.mode in ("RGBA", "LA", "P") else "RGB")
    if image.size != (output_size.width, output_size.height):
        image = image.resize((output_size.width, output_size.height), Image.Resampling.LANCZOS)
    return FinishedImage(encode_png(image, chunks), output_size.width, output_size.height)


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
            return FinishedImage(frame, width, height)
        opened.load()
        rgb = opened.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=85)
    return FinishedImage(out.getvalue(), width, height)
