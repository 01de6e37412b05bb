"""Inpainting masks: validated like every image, the source's size, read as one channel."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services.common.errors import InvalidArgumentError
from services.common.images import ValidatedImage, validate_image, validate_mask

MAX_BYTES, MAX_SIDE = 1 << 20, 4096


def _encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _source(width: int = 96, height: int = 64) -> ValidatedImage:
    data = _encode(Image.new("RGB", (width, height), (10, 20, 30)))
    return validate_image(data, field="source_image.data", max_bytes=MAX_BYTES, max_side=MAX_SIDE)


def _refusal(data: bytes, source: ValidatedImage | None) -> str:
    with pytest.raises(InvalidArgumentError) as refused:
        validate_mask(
            data, field="mask.data", source=source, max_bytes=MAX_BYTES, max_side=MAX_SIDE
        )
    (violation,) = refused.value.violations
    assert violation.field == "mask.data"
    return violation.description


def test_a_greyscale_mask_keeps_its_values_white_meaning_change() -> None:
    grey = Image.new("L", (96, 64), 0)
    grey.paste(255, (10, 10, 40, 30))
    grey.putpixel((50, 50), 128)
    mask = validate_mask(
        _encode(grey), field="mask.data", source=_source(), max_bytes=MAX_BYTES, max_side=MAX_SIDE
    ).open()
    assert (mask.getpixel((20, 20)), mask.getpixel((80, 5)), mask.getpixel((50, 50))) == (
        255,
        0,
        128,
    )


def test_transparent_pixels_of_a_png_mark_what_to_change() -> None:
    rgba = Image.new("RGBA", (96, 64), (0, 0, 0, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 16, 16))
    mask = validate_mask(
        _encode(rgba), field="mask.data", source=_source(), max_bytes=MAX_BYTES, max_side=MAX_SIDE
    ).open()
    assert (mask.getpixel((5, 5)), mask.getpixel((60, 40))) == (255, 0)


def test_an_opaque_rgba_mask_is_read_by_its_grey_values() -> None:
    rgba = Image.new("RGBA", (96, 64), (0, 0, 0, 255))
    rgba.paste((255, 255, 255, 255), (0, 0, 16, 16))
    mask = validate_mask(
        _encode(rgba), field="mask.data", source=_source(), max_bytes=MAX_BYTES, max_side=MAX_SIDE
    ).open()
    assert (mask.getpixel((5, 5)), mask.getpixel((60, 40))) == (255, 0)


def test_a_mask_of_another_size_than_the_source_is_refused_naming_both_sizes() -> None:
    description = _refusal(_encode(Image.new("L", (64, 64), 255)), _source(96, 64))
    assert "64×64" in description and "96×64" in description


def test_a_mask_without_a_source_is_refused() -> None:
    assert "source_image" in _refusal(_encode(Image.new("L", (96, 64), 255)), None)


def test_a_black_mask_marks_nothing_and_is_refused() -> None:
    assert "nothing" in _refusal(_encode(Image.new("L", (96, 64), 0)), _source())


def test_a_mask_that_is_not_an_image_is_refused_like_any_image() -> None:
    assert "PNG, JPEG and WEBP" in _refusal(b"GIF89a not really", _source())


def test_the_mask_hash_is_the_hash_of_the_callers_bytes() -> None:
    data = _encode(Image.new("L", (96, 64), 255))
    mask = validate_mask(
        data, field="mask.data", source=_source(), max_bytes=MAX_BYTES, max_side=MAX_SIDE
    )
    assert (
        mask.sha256
        == validate_image(data, field="x", max_bytes=MAX_BYTES, max_side=MAX_SIDE).sha256
    )
