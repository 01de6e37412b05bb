"""Bad requests are refused with INVALID_ARGUMENT naming the field, before anything is
uploaded to or queued on ComfyUI."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2
from services.common.errors import status_details
from tests.render.conftest import img2img_request, png, render_stack


def _empty_prompt() -> render_pb2.RenderRequest:
    return img2img_request(prompt=" \n\t ")


def _too_many_variants() -> render_pb2.RenderRequest:
    return img2img_request(variants=9)


def _gif_source() -> render_pb2.RenderRequest:
    return img2img_request(b"GIF89a" + b"\x00" * 64)


def _text_source() -> render_pb2.RenderRequest:
    return img2img_request(b"definitely not an image")


def _seed_overflow() -> render_pb2.RenderRequest:
    return img2img_request(seed=2**64 - 1, variants=2)


def _workflow_path() -> render_pb2.RenderRequest:
    return img2img_request(workflow="../flux-img2img")


def _lora_path() -> render_pb2.RenderRequest:
    return img2img_request(loras=[common_pb2.LoraSpec(name="../loras/evil.safetensors")])


def _lora_nan() -> render_pb2.RenderRequest:
    return img2img_request(
        loras=[common_pb2.LoraSpec(name="flux-realism-lora.safetensors", strength=float("nan"))]
    )


def _percent_out_of_range() -> render_pb2.RenderRequest:
    return img2img_request(
        controlnet=common_pb2.ControlNetSpec(type=common_pb2.CONTROL_TYPE_CANNY, end_percent=1.5)
    )


def _control_type_unset() -> render_pb2.RenderRequest:
    return img2img_request(controlnet=common_pb2.ControlNetSpec(strength=0.5))


def _zero_steps() -> render_pb2.RenderRequest:
    request = img2img_request()
    request.settings.steps = 0
    return request


def _workflow_of_the_other_mode() -> render_pb2.RenderRequest:
    return img2img_request(workflow="flux-txt2img")


def _txt2img_controlnet_without_image() -> render_pb2.RenderRequest:
    return render_pb2.RenderRequest(
        positive_prompt="a chair",
        controlnet=common_pb2.ControlNetSpec(type=common_pb2.CONTROL_TYPE_CANNY),
    )


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (_empty_prompt, "positive_prompt"),
        (_too_many_variants, "variants"),
        (_gif_source, "source_image.data"),
        (_text_source, "source_image.data"),
        (_seed_overflow, "seed"),
        (_workflow_path, "workflow"),
        (_lora_path, "loras[0].name"),
        (_lora_nan, "loras[0].strength"),
        (_percent_out_of_range, "controlnet.end_percent"),
        (_control_type_unset, "controlnet.type"),
        (_zero_steps, "settings.steps"),
        (_workflow_of_the_other_mode, "workflow"),
        (_txt2img_controlnet_without_image, "controlnet.control_image"),
    ],
)
async def test_bad_field_is_invalid_argument_and_nothing_reaches_comfyui(
    make: Callable[[], render_pb2.RenderRequest], field: str
) -> None:
    async with render_stack() as stack:
        try:
            [e async for e in stack.stub.Render(make(), timeout=10)]
            raise AssertionError("the request should be refused")
        except grpc.aio.AioRpcError as e:
            error = e
        fake = stack.comfy.fake
        assert fake.counters.uploads == 0
        assert fake.counters.prompt_requests == 0
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = [d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)]
    assert field in [v.field for v in bad.field_violations]


async def test_every_bad_field_is_reported_at_once() -> None:
    request = img2img_request(png(64, 64), prompt="", variants=50, workflow="a/b")
    async with render_stack() as stack:
        try:
            [e async for e in stack.stub.Render(request, timeout=10)]
            raise AssertionError("the request should be refused")
        except grpc.aio.AioRpcError as e:
            error = e
    (bad,) = [d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)]
    assert {v.field for v in bad.field_violations} == {"positive_prompt", "variants", "workflow"}


async def test_depth_without_a_control_image_is_a_failed_precondition() -> None:
    request = img2img_request(
        controlnet=common_pb2.ControlNetSpec(type=common_pb2.CONTROL_TYPE_DEPTH)
    )
    async with render_stack() as stack:
        try:
            [e async for e in stack.stub.Render(request, timeout=10)]
            raise AssertionError("the request should be refused")
        except grpc.aio.AioRpcError as e:
            error = e
        assert stack.comfy.fake.counters.prompt_requests == 0
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "control_image" in (error.details() or "")
