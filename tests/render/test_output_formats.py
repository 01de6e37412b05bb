"""Result encodings: PNG, JPEG and WEBP, each carrying its metadata where tools look."""

from __future__ import annotations

import io
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from PIL import ExifTags, Image

from imagegen.common.v1 import common_pb2
from services.common.errors import status_details
from services.render.dimensions import Size
from services.render.result_images import Encoding, OutputFormat, finish_result
from services.render.result_metadata import (
    PARAMETERS_KEY,
    PROMPT_KEY,
    PROVENANCE_KEY,
    jpeg_xmp_packet,
    read_metadata,
    user_comment,
    xmp_packet,
)
from tests.render.conftest import collect, img2img_request, of_kind, png, render_stack

PARAMETERS = "a green cup\nNegative prompt: \nSteps: 4, Seed: 1234, Size: 96x64"
METADATA = {
    PARAMETERS_KEY: PARAMETERS,
    PROVENANCE_KEY: '{"instruction":"перекрась чашку"}',
    PROMPT_KEY: '{"1":{"class_type":"SaveImage"}}',
}
_USER_COMMENT = ExifTags.Base.UserComment


def _user_comment(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        value = image.getexif().get_ifd(ExifTags.IFD.Exif)[_USER_COMMENT]
    assert isinstance(value, bytes)
    return value


@pytest.mark.parametrize(
    ("fmt", "pillow_name", "mime"),
    [
        (OutputFormat.PNG, "PNG", "image/png"),
        (OutputFormat.JPEG, "JPEG", "image/jpeg"),
        (OutputFormat.WEBP, "WEBP", "image/webp"),
    ],
)
def test_each_format_decodes_at_the_output_size_with_its_metadata(
    fmt: OutputFormat, pillow_name: str, mime: str
) -> None:
    finished = finish_result(png(112, 64), Size(100, 60), METADATA, Encoding(fmt, 80))
    assert finished.mime_type == mime
    with Image.open(io.BytesIO(finished.data)) as image:
        image.load()
        assert (image.format, image.size) == (pillow_name, (100, 60))
    assert read_metadata(finished.data) == METADATA


def test_a_png_already_at_the_output_size_keeps_its_pixels_and_gets_text_chunks() -> None:
    raw = png(96, 64, (10, 20, 30))
    finished = finish_result(raw, Size(96, 64), METADATA)
    with Image.open(io.BytesIO(finished.data)) as image:
        assert image.getpixel((5, 5)) == (10, 20, 30)
        assert image.text[PARAMETERS_KEY] == PARAMETERS  # type: ignore[attr-defined]


@pytest.mark.parametrize("fmt", [OutputFormat.JPEG, OutputFormat.WEBP])
def test_the_exif_user_comment_carries_the_parameters_as_a1111_writes_them(
    fmt: OutputFormat,
) -> None:
    finished = finish_result(png(64, 64), Size(64, 64), METADATA, Encoding(fmt, 90))
    assert _user_comment(finished.data) == b"ASCII\0\0\0" + PARAMETERS.encode()


def test_a_non_ascii_user_comment_is_utf16_with_the_unicode_prefix() -> None:
    assert user_comment("чашка") == b"UNICODE\0" + "чашка".encode("utf-16-be")
    metadata = {PARAMETERS_KEY: "зелёная чашка\nSteps: 4, Seed: 9"}
    finished = finish_result(png(64, 64), Size(64, 64), metadata, Encoding(OutputFormat.JPEG))
    assert read_metadata(finished.data)[PARAMETERS_KEY] == metadata[PARAMETERS_KEY]


def test_the_xmp_packet_names_the_parameters_as_exif_user_comment() -> None:
    packet = xmp_packet(METADATA).decode()
    assert "<exif:UserComment>" in packet
    assert "Seed: 1234" in packet


def test_jpeg_xmp_too_large_drops_the_graph_but_keeps_the_parameters() -> None:
    big = {**METADATA, PROMPT_KEY: "x" * 70_000}
    packet = jpeg_xmp_packet(big)
    assert len(packet) <= 65_504
    assert b"Seed: 1234" in packet
    assert b"xxxxxxxx" not in packet
    finished = finish_result(png(64, 64), Size(64, 64), big, Encoding(OutputFormat.JPEG))
    found = read_metadata(finished.data)
    assert PROMPT_KEY not in found and found[PROVENANCE_KEY] == METADATA[PROVENANCE_KEY]


def test_a_lower_quality_makes_a_smaller_jpeg() -> None:
    noisy = Image.effect_noise((256, 256), 60).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    sizes = [
        len(finish_result(out.getvalue(), Size(256, 256), {}, Encoding(OutputFormat.JPEG, q)).data)
        for q in (30, 95)
    ]
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize(
    ("output_format", "pillow_name", "mime"),
    [
        (common_pb2.OUTPUT_FORMAT_UNSPECIFIED, "PNG", "image/png"),
        (common_pb2.OUTPUT_FORMAT_JPEG, "JPEG", "image/jpeg"),
        (common_pb2.OUTPUT_FORMAT_WEBP, "WEBP", "image/webp"),
    ],
)
async def test_a_render_returns_the_requested_format_with_seed_and_prompt_inside(
    output_format: common_pb2.OutputFormat, pillow_name: str, mime: str
) -> None:
    request = img2img_request(
        png(160, 120), prompt="a green cup on a saucer", seed=1234, output_format=output_format
    )
    request.output_quality = 70
    async with render_stack() as stack:
        (result,) = of_kind(await collect(stack.stub, request), "result")
    assert result.image.mime_type == mime
    with Image.open(io.BytesIO(result.image.data)) as image:
        image.load()
        assert (image.format, image.size) == (pillow_name, (160, 120))
        if pillow_name == "PNG":
            parameters = image.text[PARAMETERS_KEY]  # type: ignore[attr-defined]
        else:
            comment = image.getexif().get_ifd(ExifTags.IFD.Exif)[_USER_COMMENT]
            parameters = comment.removeprefix(b"ASCII\0\0\0").decode()
    assert parameters.startswith("a green cup on a saucer\n")
    assert "Seed: 1234" in parameters
    assert '"seed":1234' in read_metadata(result.image.data)[PROVENANCE_KEY]


async def _refusal(**fields: Any) -> grpc.aio.AioRpcError:
    async with render_stack() as stack:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await collect(stack.stub, img2img_request(**fields))
        assert stack.comfy.fake.submitted == []
    return raised.value


def _fields(error: grpc.aio.AioRpcError) -> list[str]:
    (bad,) = [d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)]
    return [v.field for v in bad.field_violations]


async def test_a_quality_above_100_is_refused_naming_output_quality() -> None:
    error = await _refusal(output_format=common_pb2.OUTPUT_FORMAT_JPEG, output_quality=101)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["output_quality"]
    assert "1 to 100" in (error.details() or "")


async def test_an_unknown_format_number_is_refused_naming_output_format() -> None:
    error = await _refusal(output_format=7)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["output_format"]
