"""Edit templates end to end: inpainting keeps the source outside the mask, Kontext needs
its model, masks are checked like every image, provenance says how the edit was made."""

from __future__ import annotations

import hashlib
import io
import json
from typing import cast

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from PIL import Image, ImageChops

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2
from services.common.errors import status_details
from services.render.result_metadata import PROVENANCE_KEY, read_metadata
from tests.render.conftest import (
    collect,
    fake_settings,
    graph_of,
    img2img_request,
    nodes_of,
    of_kind,
    render_stack,
)

KONTEXT_MODEL = "flux1-dev-kontext_fp8_scaled.safetensors"
WIDTH, HEIGHT = 200, 136
BOX = (60, 30, 140, 100)


def _photo() -> bytes:
    """A source with detail everywhere, so a changed pixel shows."""
    grey = Image.radial_gradient("L").resize((WIDTH, HEIGHT))
    image = Image.merge(
        "RGB", (grey, grey.rotate(90), grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _mask(size: tuple[int, int] = (WIDTH, HEIGHT)) -> bytes:
    mask = Image.new("L", size, 0)
    mask.paste(255, BOX)
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _largest(difference: Image.Image) -> int:
    """The largest channel value of a difference image."""
    extrema = cast(tuple[tuple[int, int], ...], difference.getextrema())  # RGB: one per band
    return max(high for _, high in extrema)


def _inpaint(**fields: object) -> render_pb2.RenderRequest:
    return img2img_request(
        _photo(),
        prompt="a dark green ceramic cup",
        workflow="flux-inpaint",
        mask=common_pb2.Image(data=_mask()),
        **fields,
    )


async def test_inpainting_leaves_every_pixel_outside_the_mask_within_two_of_the_source() -> None:
    async with render_stack() as stack:
        (result,) = of_kind(await collect(stack.stub, _inpaint()), "result")
        graph = graph_of(stack.comfy, result.prompt_id)
    source, out = _decoded(_photo()), _decoded(result.image.data)
    assert out.size == source.size
    diff = ImageChops.difference(source, out)
    kept = diff.copy()
    kept.paste((0, 0, 0), BOX)
    assert _largest(kept) <= 2
    assert _largest(diff.crop(BOX)) > 20, "the masked area was re-drawn"
    (loader,) = nodes_of(graph, "LoadImageMask")
    assert loader["inputs"]["image"].endswith("-mask.png")
    assert nodes_of(graph, "InpaintModelConditioning") and nodes_of(graph, "DifferentialDiffusion")


async def test_the_provenance_records_the_mode_the_mask_hash_and_the_models() -> None:
    async with render_stack() as stack:
        (result,) = of_kind(await collect(stack.stub, _inpaint()), "result")
    record = json.loads(read_metadata(result.image.data)[PROVENANCE_KEY])
    assert record["edit"] == {
        "mode": "inpaint",
        "mask_sha256": hashlib.sha256(_mask()).hexdigest(),
        "kept_outside_mask": True,
    }
    assert record["models"] == ["flux1-dev-fp8.safetensors"]


def _fields(error: grpc.aio.AioRpcError) -> list[str]:
    (bad,) = [d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)]
    return [v.field for v in bad.field_violations]


async def _refused(request: render_pb2.RenderRequest) -> grpc.aio.AioRpcError:
    async with render_stack() as stack:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await collect(stack.stub, request)
        assert stack.comfy.fake.submitted == []
    return raised.value


async def test_a_mask_of_the_wrong_size_is_invalid_naming_the_mask() -> None:
    request = _inpaint()
    request.mask.data = _mask((WIDTH, HEIGHT + 8))
    error = await _refused(request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["mask.data"]


async def test_the_inpainting_template_without_a_mask_is_invalid_naming_the_mask() -> None:
    request = _inpaint()
    request.ClearField("mask")
    error = await _refused(request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["mask"]


async def test_kontext_without_its_model_is_a_failed_precondition_naming_the_model() -> None:
    error = await _refused(img2img_request(_photo(), workflow="flux-kontext-edit"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert KONTEXT_MODEL in (error.details() or "")
    (info,) = [d for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)]
    assert info.reason == "KONTEXT_MODEL_MISSING"


async def test_kontext_with_its_model_returns_the_sources_size() -> None:
    comfy = fake_settings(diffusion_models=[KONTEXT_MODEL])
    request = img2img_request(_photo(), "Make the cup dark green.", workflow="flux-kontext-edit")
    async with render_stack(comfy=comfy) as stack:
        (result,) = of_kind(await collect(stack.stub, request), "result")
        graph = graph_of(stack.comfy, result.prompt_id)
    assert (result.image.width, result.image.height) == (WIDTH, HEIGHT)
    assert _decoded(result.image.data).size == (WIDTH, HEIGHT)
    assert len(nodes_of(graph, "ReferenceLatent")) == 1
    assert nodes_of(graph, "FluxKontextImageScale")
    record = json.loads(read_metadata(result.image.data)[PROVENANCE_KEY])
    assert record["edit"]["mode"] == "kontext"
    assert KONTEXT_MODEL in record["models"]


async def test_a_mask_on_kontext_keeps_the_source_outside_it_too() -> None:
    comfy = fake_settings(diffusion_models=[KONTEXT_MODEL])
    request = img2img_request(
        _photo(),
        "Make the cup dark green.",
        workflow="flux-kontext-edit",
        mask=common_pb2.Image(data=_mask()),
    )
    async with render_stack(comfy=comfy) as stack:
        (result,) = of_kind(await collect(stack.stub, request), "result")
    diff = ImageChops.difference(_decoded(_photo()), _decoded(result.image.data))
    assert _largest(diff.crop((0, 0, WIDTH, BOX[1]))) <= 2


@pytest.mark.parametrize(
    ("checkpoints", "used"),
    [
        (["flux1-dev-fp8.safetensors", "flux1-fill-dev-fp8.safetensors"], "flux1-fill-dev-fp8"),
        (["flux1-dev-fp8.safetensors"], "flux1-dev-fp8"),
    ],
)
async def test_inpainting_uses_flux_fill_where_the_server_has_it_and_flux_dev_elsewhere(
    checkpoints: list[str], used: str
) -> None:
    async with render_stack(comfy=fake_settings(checkpoints=checkpoints)) as stack:
        (result,) = of_kind(await collect(stack.stub, _inpaint()), "result")
        graph = graph_of(stack.comfy, result.prompt_id)
    (loader,) = nodes_of(graph, "CheckpointLoaderSimple")
    assert loader["inputs"]["ckpt_name"] == f"{used}.safetensors"
    record = json.loads(read_metadata(result.image.data)[PROVENANCE_KEY])
    assert record["models"] == [f"{used}.safetensors"]
