"""Small test images made on the fly (no large fixtures)."""

from __future__ import annotations

import io

from PIL import Image

__all__ = ["jpeg_bytes", "png_bytes"]


def png_bytes(
    width: int = 96, height: int = 64, color: tuple[int, int, int] = (120, 80, 40)
) -> bytes:
    """A solid-colour PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(
    width: int = 96, height: int = 64, color: tuple[int, int, int] = (40, 90, 160)
) -> bytes:
    """A solid-colour JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
