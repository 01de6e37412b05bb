"""Input images are validated once, by content, before anything else touches them."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import warnings
import zlib
from typing import TypedDict

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from PIL import Image, ImageFile

from imagegen.common.v1 import common_pb2
from imagegen.vision.v1 import vision_pb2
from services.common.errors import InvalidArgumentError, status_details
from services.common.images import decode_image, decoded_header, read_header, validate_image
from tests.common.conftest import ProbeVision, ServeFactory, encode, open_channel, vision_stub


class Limits(TypedDict):
    max_bytes: int
    max_side: int


LIMITS = Limits(max_bytes=32 * 1024 * 1024, max_side=4096)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(side: int = 20000) -> bytes:
    """A PNG whose header claims side×side greyscale pixels, in a few hundred bytes."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)  # a few filtered zero rows
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def truncated_png() -> bytes:
    noise = Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    data = buffer.getvalue()
    return data[: len(data) // 2]


def jpeg_with_orientation(size: tuple[int, int], orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS R6"  # Model
    return encode(size, "JPEG", exif=exif.tobytes())


BAD_IMAGES = {
    "gif": encode((8, 8), "GIF"),
    "truncated png": truncated_png(),
    "5000x10": encode((5000, 10), "PNG"),
    "decompression bomb": png_bomb(),
    "empty": b"",
    "text renamed .png": b"this is a text file, saved as picture.png\n",
}


@pytest.mark.parametrize("data", BAD_IMAGES.values(), ids=BAD_IMAGES.keys())
async def test_bad_image_is_invalid_argument_naming_the_field(
    serve: ServeFactory, data: bytes
) -> None:
    async with serve(ProbeVision()) as server, open_channel(server) as channel:
        stub = vision_stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.AnalyzeImage(
                vision_pb2.AnalyzeImageRequest(image=common_pb2.Image(data=data)), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad_request,) = status_details(caught.value)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [v.field for v in bad_request.field_violations] == ["image.data"]


GOOD_IMAGES = {
    "PNG": encode((64, 48), "PNG"),
    "JPEG": encode((64, 48), "JPEG"),
    "WEBP": encode((64, 48), "WEBP"),
}


@pytest.mark.parametrize(("fmt", "data"), GOOD_IMAGES.items(), ids=GOOD_IMAGES.keys())
async def test_valid_image_passes_with_format_and_size(
    serve: ServeFactory, fmt: str, data: bytes
) -> None:
    async with serve(ProbeVision()) as server, open_channel(server) as channel:
        stub = vision_stub(channel)
        response = await stub.AnalyzeImage(
            vision_pb2.AnalyzeImageRequest(image=common_pb2.Image(data=data)), timeout=5
        )
    analysis = response.analysis
    assert (analysis.description, analysis.width, analysis.height) == (fmt, 64, 48)


def test_exif_orientation_6_swaps_width_and_height() -> None:
    image = validate_image(jpeg_with_orientation((80, 30), 6), field="image.data", **LIMITS)
    assert (image.width, image.height) == (30, 80)


def test_open_returns_the_upright_rgb_image() -> None:
    image = validate_image(jpeg_with_orientation((80, 30), 6), field="image.data", **LIMITS)
    opened = image.open()
    assert (opened.mode, opened.size) == ("RGB", (30, 80))


def test_decoded_pixels_are_the_upright_image_and_closed_with_the_block() -> None:
    data = jpeg_with_orientation((80, 30), 6)
    opened = validate_image(data, field="image.data", **LIMITS).open()
    with decode_image(data, field="image.data", **LIMITS) as decoded:
        pixels = decoded.pixels
        assert (decoded.image.width, decoded.image.height) == (30, 80)
        assert (pixels.mode, pixels.size) == ("RGB", (30, 80))
        assert pixels.tobytes() == opened.tobytes()
    with pytest.raises(ValueError, match="closed image"):
        pixels.load()


def test_a_jpeg_decoded_to_fit_is_read_at_a_reduced_scale_with_its_full_size_reported() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 1000), "teal").save(buffer, format="JPEG")
    data = buffer.getvalue()
    header = read_header(data, field="image.data", **LIMITS)
    assert (header.width, header.height, header.needs_copy) == (2000, 1000, False)
    assert header.decoded_bytes == 4 * 2000 * 1000
    scaled = decoded_header(header, fit=200)
    assert (scaled.decoded_width, scaled.decoded_height) == (500, 250)
    with decode_image(data, field="image.data", fit=200, **LIMITS) as decoded:
        assert (decoded.image.width, decoded.image.height) == (2000, 1000)
        assert decoded.pixels.size == (500, 250)


def test_a_header_that_needs_turning_or_converting_counts_two_copies() -> None:
    header = read_header(jpeg_with_orientation((80, 30), 6), field="image.data", **LIMITS)
    assert header.needs_copy
    assert header.decoded_bytes == 2 * 4 * 80 * 30


def test_a_truncated_jpeg_is_refused_even_when_decoded_at_a_reduced_scale() -> None:
    buffer = io.BytesIO()
    Image.effect_noise((800, 800), 60).convert("RGB").save(buffer, format="JPEG")
    data = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    read_header(data, field="image.data", **LIMITS)
    with pytest.raises(InvalidArgumentError, match="truncated or corrupt JPEG"):
        decode_image(data, field="image.data", fit=100, **LIMITS)


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_validation_decodes_a_jpeg_at_one_eighth_and_still_refuses_it_truncated(
    keep: float,
) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((1600, 1200), 60).convert("RGB").save(buffer, format="JPEG")
    whole = buffer.getvalue()
    assert validate_image(whole, field="image.data", **LIMITS).width == 1600
    with pytest.raises(InvalidArgumentError, match="truncated or corrupt JPEG"):
        validate_image(whole[: int(len(whole) * keep)], field="image.data", **LIMITS)


def test_validation_refuses_a_jpeg_with_overwritten_entropy_data() -> None:
    buffer = io.BytesIO()
    Image.effect_noise((800, 600), 60).convert("RGB").save(buffer, format="JPEG")
    broken = bytearray(buffer.getvalue())
    middle = len(broken) // 2
    # The run ends in 0xFF 0x5A, a marker JPEG does not define, so libjpeg must stop.
    # (Had it ended on whatever noise byte came next, an APPn/EOI/RST code there would
    # only draw a libjpeg warning, which no decoder reports, ComfyUI's neither.)
    broken[middle : middle + 400] = b"\xff" * 399 + b"\x5a"
    with pytest.raises(InvalidArgumentError, match="truncated or corrupt JPEG"):
        validate_image(bytes(broken), field="image.data", **LIMITS)


def test_exif_reports_camera_fields() -> None:
    image = validate_image(jpeg_with_orientation((80, 30), 1), field="image.data", **LIMITS)
    assert image.exif() == {"Make": "Canon", "Model": "EOS R6"}


def test_validated_image_reports_mime_type_and_content_hash() -> None:
    data = GOOD_IMAGES["WEBP"]
    image = validate_image(data, field="image.data", **LIMITS)
    assert image.mime_type == "image/webp"
    assert image.sha256 == hashlib.sha256(data).hexdigest()


def test_payload_above_byte_limit_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_image(GOOD_IMAGES["PNG"], field="source_image.data", max_bytes=10, max_side=4096)
    assert caught.value.violations[0].field == "source_image.data"
    assert "limit is 10 bytes" in caught.value.violations[0].description


def test_bomb_is_refused_without_a_pillow_warning_under_any_filter() -> None:
    # 10000×10000 lies between Pillow's warning and error thresholds: Image.open would
    # warn, which only becomes an error under a warnings-as-errors filter.
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(InvalidArgumentError, match="decompression bomb"):
            validate_image(png_bomb(10000), field="image.data", **LIMITS)
    assert seen == []


def test_truncated_file_is_refused_with_truncated_loading_off() -> None:
    with pytest.raises(InvalidArgumentError, match="truncated or corrupt"):
        validate_image(truncated_png(), field="image.data", **LIMITS)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
