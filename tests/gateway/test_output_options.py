"""Output format, quality and upscale factor: checked by the gateway, carried to the render."""

from __future__ import annotations

import io

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from PIL import ExifTags, Image

from gateway.validation import RequestLimits, validate_generate
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import InvalidArgumentError, status_details
from tests.gateway.images import jpeg_bytes, png_bytes
from tests.gateway.system import System

LIMITS = RequestLimits()


def _request(source: bytes | None = None, **fields: object) -> gateway_pb2.GenerateRequest:
    return gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=source if source is not None else png_bytes()),
        instruction="make the cup green",
        **fields,  # type: ignore[arg-type]
    )


def _bad_fields(request: gateway_pb2.GenerateRequest) -> list[str]:
    with pytest.raises(InvalidArgumentError) as raised:
        validate_generate(request, LIMITS)
    return [v.field for v in raised.value.violations]


def test_format_quality_and_scale_reach_the_job() -> None:
    job = validate_generate(
        _request(output_format=common_pb2.OUTPUT_FORMAT_WEBP, output_quality=75, scale=2.5),
        LIMITS,
    )
    assert (job.output_format, job.output_quality, job.scale) == (
        common_pb2.OUTPUT_FORMAT_WEBP,
        75,
        2.5,
    )


def test_unset_options_stay_unset() -> None:
    job = validate_generate(_request(), LIMITS)
    assert (job.output_format, job.output_quality, job.scale) == (0, 0, None)


@pytest.mark.parametrize("quality", [101, 1000])
def test_a_quality_out_of_range_is_refused_naming_output_quality(quality: int) -> None:
    assert _bad_fields(_request(output_quality=quality)) == ["output_quality"]


def test_an_unknown_format_number_is_refused_naming_output_format() -> None:
    assert _bad_fields(_request(output_format=9)) == ["output_format"]


@pytest.mark.parametrize("scale", [0.5, 9.0, float("nan"), float("inf")])
def test_a_scale_nothing_could_use_is_refused_naming_scale(scale: float) -> None:
    assert _bad_fields(_request(scale=scale)) == ["scale"]


@pytest.mark.parametrize("size", [(63, 200), (200, 63)])
def test_a_source_under_64_pixels_is_refused_naming_it(size: tuple[int, int]) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        validate_generate(_request(png_bytes(*size)), LIMITS)
    (violation,) = raised.value.violations
    assert violation.field == "source_image.data"
    assert "at least 64 pixels" in violation.description


def test_a_64_pixel_source_passes() -> None:
    job = validate_generate(_request(png_bytes(64, 64)), LIMITS)
    assert job.inputs.image is not None


async def test_a_jpeg_upscale_is_rendered_at_the_scaled_size_with_exif(system: System) -> None:
    request = _request(
        jpeg_bytes(120, 80),
        seed=77,
        workflow="flux-upscale",
        scale=2.0,
        output_format=common_pb2.OUTPUT_FORMAT_JPEG,
        output_quality=80,
    )
    events = [e async for e in system.stub.Generate(request, timeout=30)]
    (result,) = [e.result for e in events if e.HasField("result")]
    assert result.image.mime_type == "image/jpeg"
    assert (result.image.width, result.image.height) == (240, 160)
    with Image.open(io.BytesIO(result.image.data)) as image:
        assert (image.format, image.size) == ("JPEG", (240, 160))
        comment = image.getexif().get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment]
    assert b"Seed: 77" in comment
    assert b"Workflow: flux-upscale" in comment


async def test_a_bad_quality_is_refused_before_any_model_runs(system: System) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in system.stub.Generate(_request(output_quality=101), timeout=30):
            pass
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = [
        d for d in status_details(raised.value) if isinstance(d, error_details_pb2.BadRequest)
    ]
    assert [v.field for v in bad.field_violations] == ["output_quality"]
    assert system.ollama_chats("") == 0
