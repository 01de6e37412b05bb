"""The edit nodes of the stand-in: Kontext scaling and references, masks, masked sampling."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageChops

from standins.comfyui import run_fake_comfyui
from standins.comfyui.settings import FakeComfyUISettings
from tests.standins.comfyui.comfy_client import ComfyHttp

KONTEXT = "flux1-dev-kontext_fp8_scaled.safetensors"
KONTEXT_TEMPLATE = Path(__file__).parents[3] / "workflows" / "flux-kontext-edit.json"
SIZE = (160, 96)
BOX = (40, 24, 120, 72)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _source(size: tuple[int, int] = SIZE) -> Image.Image:
    grey = Image.linear_gradient("L").resize(size)
    return Image.merge(
        "RGB", (grey, grey.rotate(180), grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )


def _mask() -> bytes:
    mask = Image.new("L", SIZE, 0)
    mask.paste(255, BOX)
    return _png(mask)


async def _run(
    prompt: dict[str, Any],
    *,
    settings: FakeComfyUISettings | None = None,
    source: Image.Image | None = None,
) -> tuple[int, dict[str, Any], list[Image.Image]]:
    settings = settings or FakeComfyUISettings(step_delay_s=0.0)
    async with run_fake_comfyui(settings) as comfy, aiohttp.ClientSession() as session:
        api = ComfyHttp(session, comfy.url)
        await api.upload(_png(source or _source()), "source.png")
        await api.upload(_mask(), "mask.png")
        status, body = await api.queue(prompt)
        if status != 200:
            return status, body, []
        entry = await comfy.fake.wait_for_history(body["prompt_id"])
        assert entry["status"]["status_str"] == "success", entry["status"]
        images = [
            Image.open(io.BytesIO(await api.view(ref))).convert("RGB")
            for out in entry["outputs"].values()
            for ref in out["images"]
        ]
        return status, body, images


def _common() -> dict[str, Any]:
    return {
        "1": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "flux1-dev-fp8.safetensors"},
        },
        "2": {"class_type": "LoadImage", "inputs": {"image": "source.png"}},
        "3": {"class_type": "LoadImageMask", "inputs": {"image": "mask.png", "channel": "red"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "green", "clip": ["1", 1]}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "t"}},
    }


def _sampler(model: list[Any], positive: list[Any], latent: list[Any]) -> dict[str, Any]:
    inputs = {"model": model, "seed": 3, "steps": 2, "cfg": 1.0, "sampler_name": "euler"}
    inputs |= {"scheduler": "simple", "positive": positive, "negative": positive}
    return {"class_type": "KSampler", "inputs": inputs | {"latent_image": latent, "denoise": 1.0}}


def _inpaint_graph() -> dict[str, Any]:
    conditioning: dict[str, Any] = {"positive": ["4", 0], "negative": ["4", 0], "vae": ["1", 2]}
    conditioning |= {"pixels": ["2", 0], "mask": ["3", 0], "noise_mask": True}
    return _common() | {
        "5": {"class_type": "InpaintModelConditioning", "inputs": conditioning},
        "9": {"class_type": "DifferentialDiffusion", "inputs": {"model": ["1", 0]}},
        "6": _sampler(["9", 0], ["5", 0], ["5", 2]),
    }


def _noise_mask_graph() -> dict[str, Any]:
    return _common() | {
        "9": {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["1", 2]}},
        "5": {
            "class_type": "SetLatentNoiseMask",
            "inputs": {"samples": ["9", 0], "mask": ["3", 0]},
        },
        "6": _sampler(["1", 0], ["4", 0], ["5", 0]),
    }


@pytest.mark.parametrize("graph", [_inpaint_graph, _noise_mask_graph])
async def test_a_noise_mask_samples_only_inside_the_mask(graph: Any) -> None:
    _, _, (out,) = await _run(graph())
    diff = ImageChops.difference(_source(), out)
    outside = diff.copy()
    outside.paste((0, 0, 0), BOX)
    assert outside.getbbox() is None
    assert diff.crop(BOX).getbbox() is not None


async def test_without_the_noise_mask_inpaint_conditioning_redraws_everything() -> None:
    graph = _inpaint_graph()
    graph["5"]["inputs"]["noise_mask"] = False
    _, _, (out,) = await _run(graph)
    diff = ImageChops.difference(_source(), out)
    diff.paste((0, 0, 0), BOX)
    assert diff.getbbox() is not None


def _kontext_graph() -> dict[str, Any]:
    return {
        "1": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "flux1-dev-fp8.safetensors"},
        },
        "10": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": KONTEXT, "weight_dtype": "default"},
        },
        "2": {"class_type": "LoadImage", "inputs": {"image": "source.png"}},
        "3": {"class_type": "FluxKontextImageScale", "inputs": {"image": ["2", 0]}},
        "11": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "ref"}},
    }


async def test_kontext_image_scale_picks_the_preferred_size_nearest_the_aspect() -> None:
    settings = FakeComfyUISettings(step_delay_s=0.0, diffusion_models=[KONTEXT])
    _, _, (scaled,) = await _run(_kontext_graph(), settings=settings, source=_source((640, 480)))
    assert scaled.size == (1184, 880)  # 4:3 is nearest to 1184×880 of Kontext's list


def _kontext_template() -> dict[str, Any]:
    graph: dict[str, Any] = json.loads(KONTEXT_TEMPLATE.read_text(encoding="utf-8"))
    graph["3"]["inputs"]["image"] = "source.png"
    graph["10"]["inputs"] |= {"width": 160, "height": 96}
    return graph


async def test_the_kontext_template_renders_only_where_the_model_is_configured() -> None:
    status, body, _ = await _run(_kontext_template())
    assert status == 400
    assert KONTEXT in str(body)
    with_model = FakeComfyUISettings(step_delay_s=0.0, diffusion_models=[KONTEXT])
    status, _, (out,) = await _run(_kontext_template(), settings=with_model)
    assert status == 200 and out.size == SIZE
