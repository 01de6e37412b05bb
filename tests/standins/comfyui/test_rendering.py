"""What the fake renders: deterministic pixels from seed/denoise/input, ComfyUI's sizes."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
from PIL import Image, ImageChops, ImageStat

from standins.comfyui import RunningFakeComfyUI, run_fake_comfyui
from tests.standins.comfyui.comfy_client import ComfyHttp
from tests.standins.comfyui.reference import graph, probe_image_png, probe_settings


async def _outputs(
    comfy: RunningFakeComfyUI, api: ComfyHttp, prompt: dict[str, Any]
) -> list[bytes]:
    status, body = await api.queue(prompt)
    assert status == 200, body
    entry = await comfy.fake.wait_for_history(body["prompt_id"])
    assert entry["status"]["status_str"] == "success", entry["status"]
    return [await api.view(ref) for out in entry["outputs"].values() for ref in out["images"]]


def _pixels(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def _distance(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b.resize(a.size))).mean) / 3


async def test_the_same_graph_and_input_give_byte_identical_pngs() -> None:
    results = []
    for _ in range(2):
        async with run_fake_comfyui(probe_settings()) as comfy, aiohttp.ClientSession() as s:
            api = ComfyHttp(s, comfy.url)
            await api.upload(probe_image_png((640, 480)), "input.png")
            results.append(await _outputs(comfy, api, graph("flux_img2img")))

    assert results[0] == results[1]


async def test_a_different_seed_gives_different_pixels(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    await api.upload(probe_image_png((640, 480)), "input.png")
    prompt = graph("flux_img2img")
    [first] = await _outputs(comfy, api, prompt)
    prompt["8"]["inputs"]["seed"] = 7

    [second] = await _outputs(comfy, api, prompt)

    assert _distance(_pixels(first), _pixels(second)) > 1.0


async def test_a_lower_denoise_stays_closer_to_the_input(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    source = probe_image_png((1024, 768))
    await api.upload(source, "input.png")
    prompt = graph("flux_img2img")
    prompt["8"]["inputs"]["denoise"] = 0.2
    [light] = await _outputs(comfy, api, prompt)
    prompt["8"]["inputs"]["denoise"] = 0.9

    [heavy] = await _outputs(comfy, api, prompt)

    original = _pixels(source)
    assert _distance(original, _pixels(light)) < _distance(original, _pixels(heavy))


async def test_vae_encode_crops_the_source_to_multiples_of_8(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    await api.upload(probe_image_png((1001, 999)), "input.png")
    prompt = graph("flux_img2img")
    del prompt["3"]
    prompt["4"]["inputs"]["pixels"] = ["2", 0]

    [png] = await _outputs(comfy, api, prompt)

    assert _pixels(png).size == (1000, 992)


async def test_an_empty_latent_batch_saves_one_file_per_image_at_any_size(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    prompt = graph("flux_txt2img")
    prompt["4"]["inputs"].update(width=1000, height=520, batch_size=2)

    pngs = await _outputs(comfy, api, prompt)

    assert [_pixels(p).size for p in pngs] == [(1000, 520), (1000, 520)]
    assert _distance(_pixels(pngs[0]), _pixels(pngs[1])) > 1.0
    entry = next(iter(comfy.fake.history.values()))
    names = [ref["filename"] for ref in entry["outputs"]["10"]["images"]]
    assert names == ["txt2img_00001_.png", "txt2img_00002_.png"]


async def test_scale_nodes_round_like_comfyui(comfy: RunningFakeComfyUI, api: ComfyHttp) -> None:
    await api.upload(probe_image_png((320, 240)), "src.png")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "src.png"}},
        "2": {
            "class_type": "ImageScaleToTotalPixels",
            "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "megapixels": 0.25},
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "a"}},
        "4": {
            "class_type": "ImageScaleBy",
            "inputs": {"image": ["1", 0], "upscale_method": "area", "scale_by": 0.35},
        },
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "b"}},
    }

    pngs = await _outputs(comfy, api, prompt)

    assert [_pixels(p).size for p in pngs] == [(591, 443), (112, 84)]


async def test_saved_pngs_carry_the_graph_and_every_extra_pnginfo_key(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    prompt = graph("flux_txt2img")
    prompt["4"]["inputs"].update(width=64, height=64)
    extra = {"extra_pnginfo": {"workflow": {"nodes": []}, "note": "hello"}}

    status, body = await api.queue(prompt, extra_data=extra)
    entry = await comfy.fake.wait_for_history(body["prompt_id"])
    png = Image.open(io.BytesIO(await api.view(entry["outputs"]["10"]["images"][0])))

    assert status == 200
    assert png.text == {  # type: ignore[attr-defined]
        "prompt": json.dumps(prompt),
        "workflow": '{"nodes": []}',
        "note": '"hello"',
    }
