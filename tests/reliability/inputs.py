"""Requests the reliability tests send: small images, few steps, a Russian instruction."""

from __future__ import annotations

import io

from PIL import Image

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2

__all__ = ["INSTRUCTION", "img2img", "png_bytes"]

INSTRUCTION = "Перекрась стены в тёплый бежевый цвет"
"""A colour change, the most common instruction."""


def png_bytes(index: int = 0, width: int = 96, height: int = 64) -> bytes:
    """A small PNG whose content differs per ``index`` (so no cache sees it twice)."""
    color = (40 + index % 200, 90 + (index // 200) % 150, 160)
    image = Image.new("RGB", (width, height), color)
    image.putpixel((0, 0), (index % 256, (index >> 8) % 256, (index >> 16) % 256))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def img2img(
    *, index: int = 0, variants: int = 1, steps: int = 4, seed: int = 1
) -> gateway_pb2.GenerateRequest:
    """An image-to-image request rendering ``variants`` variants in ``steps`` steps."""
    return gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=png_bytes(index)),
        instruction=INSTRUCTION,
        variants=variants,
        seed=seed,
        sampler=common_pb2.SamplerSettings(steps=steps),
    )
