"""Pixel work for the fake: deterministic "renders", resizes, PNG writing with metadata.

Everything here is deterministic: the same inputs give byte-identical images.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageFilter, ImageOps, PngImagePlugin

__all__ = [
    "blend",
    "canny",
    "common_upscale",
    "invert",
    "jpeg_bytes",
    "png_bytes",
    "seed_int",
    "seed_pattern",
    "tensor_repr",
]

RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "bislerp": Image.Resampling.BICUBIC,
}

UPSCALE_MODES_ERROR = (
    "Input Error: Only 3D, 4D and 5D input Tensors supported (got 4D) for the modes: "
    "nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact "
    "(got {method})"
)


def _resample(method: str) -> Image.Resampling:
    try:
        return RESAMPLE[method]
    except KeyError:
        raise NotImplementedError(UPSCALE_MODES_ERROR.format(method=method)) from None


def common_upscale(
    img: Image.Image, width: int, height: int, method: str, crop: str
) -> Image.Image:
    """comfy.utils.common_upscale: optional centre crop to the target aspect, then resize."""
    resample = _resample(method)
    if crop == "center":
        old_w, old_h = img.size
        old_aspect = old_w / old_h
        new_aspect = width / height
        x = y = 0
        if old_aspect > new_aspect:
            x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
        elif old_aspect < new_aspect:
            y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
        img = img.crop((x, y, old_w - x, old_h - y))
    if img.size == (width, height):
        return img.copy()
    return img.resize((width, height), resample)


def seed_int(*parts: Any) -> int:
    digest = hashlib.sha256(json.dumps(parts, default=str).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def seed_pattern(size: tuple[int, int], key: int) -> Image.Image:
    """A smooth colour field derived from ``key`` (stands in for a sampled image)."""
    rng = random.Random(key)
    grid_w, grid_h = rng.randint(3, 7), rng.randint(3, 7)
    small = Image.new("RGB", (grid_w, grid_h))
    small.putdata(
        [
            (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            for _ in range(grid_w * grid_h)
        ]
    )
    return small.resize(size, Image.Resampling.BICUBIC)


def blend(base: Image.Image, other: Image.Image, alpha: float) -> Image.Image:
    if other.size != base.size:
        other = other.resize(base.size, Image.Resampling.BILINEAR)
    alpha = min(1.0, max(0.0, alpha))
    return Image.blend(base.convert("RGB"), other.convert("RGB"), alpha)


def canny(img: Image.Image, low: float, high: float) -> Image.Image:
    gray = img.convert("L").filter(ImageFilter.GaussianBlur(1))
    edges = gray.filter(ImageFilter.FIND_EDGES)
    cut = int(255 * (low + high) / 4)
    edges = edges.point(lambda v: 255 if v > cut else 0)
    return edges.convert("RGB")


def invert(img: Image.Image) -> Image.Image:
    return ImageOps.invert(img.convert("RGB"))


def png_bytes(
    img: Image.Image, text_chunks: Sequence[tuple[str, str]] | None, compress_level: int
) -> bytes:
    info = None
    if text_chunks is not None:
        info = PngImagePlugin.PngInfo()
        for key, value in text_chunks:
            info.add_text(key, value)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info, compress_level=compress_level)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, max_size: int | None, quality: int = 95) -> bytes:
    img = img.convert("RGB")
    if max_size is not None and max(img.size) > max_size:
        img = img.copy()
        img.thumbnail((max_size, max_size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def tensor_repr(batch: int, height: int, width: int, channels: int, sample: float = 0.5) -> str:
    """A short torch-like repr, as ComfyUI puts into ``current_inputs`` of an error."""
    v = f"{sample:.4f}"
    row = "[" + ", ".join([v] * channels) + "]"
    block = f"[{row},\n          {row},\n          ...,\n          {row}]"
    inner = block if height > 1 else f"[{row}]"
    text = f"tensor([[{inner}"
    if batch > 1 or width > 1:
        text += ",\n\n         ...,\n\n         " + inner
    return text + "]])"
