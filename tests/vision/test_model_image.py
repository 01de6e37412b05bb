"""The downscaled copy sent to the model."""

from __future__ import annotations

import base64
import io

from PIL import Image

from services.vision.model_image import encode_for_model


def test_encode_for_model_downscales_to_the_longest_side_as_plain_base64_jpeg() -> None:
    encoded = encode_for_model(Image.new("RGB", (2000, 1000), "red"), max_side=672, quality=90)
    data = base64.b64decode(encoded.base64, validate=True)
    assert data.startswith(b"\xff\xd8\xff")
    assert Image.open(io.BytesIO(data)).size == (672, 336) == (encoded.width, encoded.height)
    assert encoded.jpeg_bytes == len(data)


def test_encode_for_model_never_upscales() -> None:
    encoded = encode_for_model(Image.new("RGB", (300, 200), "red"), max_side=672, quality=90)
    assert (encoded.width, encoded.height) == (300, 200)
