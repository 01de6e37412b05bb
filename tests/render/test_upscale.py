"""Output size policies end to end: the ``flux-upscale`` workflow, the cap, the warnings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2

from imagegen.render.v1 import render_pb2
from services.common.errors import status_details
from services.render.dimensions import MEGAPIXEL
from tests.render.conftest import (
    collect,
    graph_of,
    image_size,
    img2img_request,
    nodes_of,
    of_kind,
    png,
    render_stack,
)


def _codes(events: Sequence[render_pb2.RenderResponse]) -> list[str]:
    return [w.code for w in of_kind(events, "warning")]


async def test_upscale_by_two_of_300x200_returns_600x400() -> None:
    request = img2img_request(png(300, 200), workflow="flux-upscale", scale=2.0)
    async with render_stack() as stack:
        events = await collect(stack.stub, request)
        (result,) = of_kind(events, "result")
        graph = graph_of(stack.comfy, result.prompt_id)
    assert (result.image.width, result.image.height) == (600, 400)
    assert image_size(result.image.data) == (600, 400)
    assert (result.render_width, result.render_height) == (608, 400)
    (scale,) = nodes_of(graph, "ImageScale")
    assert (scale["inputs"]["width"], scale["inputs"]["height"]) == (608, 400)
    assert _codes(events) == []


async def test_upscale_without_a_scale_uses_the_workflow_default_of_two() -> None:
    request = img2img_request(png(160, 120), workflow="flux-upscale")
    async with render_stack() as stack:
        (result,) = of_kind(await collect(stack.stub, request), "result")
    assert image_size(result.image.data) == (320, 240)


async def test_the_upscale_ceiling_lowers_the_factor_and_warns() -> None:
    request = img2img_request(png(300, 200), workflow="flux-upscale", scale=4.0)
    async with render_stack(upscale_max_megapixels=0.5) as stack:
        events = await collect(stack.stub, request)
    (result,) = of_kind(events, "result")
    (warning,) = [w for w in of_kind(events, "warning") if w.code == "RENDER_SCALED_TO_CAP"]
    assert result.image.width * result.image.height <= 0.5 * MEGAPIXEL
    assert result.render_width * result.render_height <= 0.5 * MEGAPIXEL
    assert (result.image.width, result.image.height) == (866, 577)
    assert "0.5 MP" in warning.message and "1200x800" in warning.message


async def test_a_source_above_the_render_cap_warns_that_it_was_drawn_smaller() -> None:
    request = img2img_request(png(1000, 750))
    async with render_stack(max_megapixels=0.5) as stack:
        events = await collect(stack.stub, request)
    (result,) = of_kind(events, "result")
    assert image_size(result.image.data) == (1000, 750)
    assert "RENDER_SCALED_TO_CAP" in _codes(events)


async def test_a_source_under_the_cap_gets_no_cap_warning() -> None:
    async with render_stack() as stack:
        events = await collect(stack.stub, img2img_request(png(1000, 750)))
    assert "RENDER_SCALED_TO_CAP" not in _codes(events)


async def test_dimensions_ignored_only_when_the_requested_size_differs() -> None:
    async with render_stack() as stack:
        same = await collect(
            stack.stub,
            img2img_request(png(300, 200), workflow="flux-upscale", width=600, height=400),
        )
        other = await collect(
            stack.stub,
            img2img_request(png(300, 200), workflow="flux-upscale", width=512, height=512),
        )
        source_same = await collect(stack.stub, img2img_request(png(300, 200), width=300))
    assert "DIMENSIONS_IGNORED" not in _codes(same)
    assert "DIMENSIONS_IGNORED" in _codes(other)
    assert "DIMENSIONS_IGNORED" not in _codes(source_same)


async def test_a_scale_sent_to_a_workflow_that_keeps_the_size_is_ignored_with_a_warning() -> None:
    async with render_stack() as stack:
        events = await collect(stack.stub, img2img_request(png(300, 200), scale=2.0))
    (result,) = of_kind(events, "result")
    assert image_size(result.image.data) == (300, 200)
    assert "SCALE_IGNORED" in _codes(events)


async def _refusal(**fields: Any) -> grpc.aio.AioRpcError:
    async with render_stack() as stack:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await collect(stack.stub, img2img_request(**fields))
        assert stack.comfy.fake.submitted == []
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return raised.value


def _fields(error: grpc.aio.AioRpcError) -> list[str]:
    (bad,) = [d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)]
    return [v.field for v in bad.field_violations]


@pytest.mark.parametrize("scale", [1.2, 5.0, float("nan")])
async def test_a_scale_outside_the_workflow_range_is_refused_naming_scale(scale: float) -> None:
    error = await _refusal(source=png(300, 200), workflow="flux-upscale", scale=scale)
    assert _fields(error) == ["scale"]


async def test_a_63_pixel_source_is_refused_naming_the_source() -> None:
    error = await _refusal(source=png(63, 200))
    assert _fields(error) == ["source_image.data"]
    assert "at least 64 pixels" in (error.details() or "")


async def test_a_source_too_large_to_enlarge_is_refused() -> None:
    error = await _refusal(source=png(3000, 2000), workflow="flux-upscale", scale=2.0)
    assert _fields(error) == ["source_image.data"]
    assert "upscale ceiling" in (error.details() or "")


async def test_a_64_pixel_source_is_accepted() -> None:
    async with render_stack() as stack:
        (result,) = of_kind(await collect(stack.stub, img2img_request(png(64, 64))), "result")
    assert image_size(result.image.data) == (64, 64)
