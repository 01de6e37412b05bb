"""The reference graphs run end to end over HTTP and the websocket and give real PNGs."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest
from PIL import Image

from standins.comfyui import FakeComfyUISettings, RunningFakeComfyUI, run_fake_comfyui
from tests.standins.comfyui.comfy_client import ComfyHttp, RecordingSocket
from tests.standins.comfyui.reference import FAST, graph, probe_image_png

WORKFLOW = {"nodes": [{"id": 1, "type": "LoadImage"}], "version": 0.4}


async def _render(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, prompt: dict[str, Any]
) -> tuple[dict[str, Any], RecordingSocket]:
    api = ComfyHttp(session, comfy.url)
    async with RecordingSocket(session, comfy.url, "render-client") as sock:
        status, body = await api.queue(
            prompt, client_id="render-client", extra_data={"extra_pnginfo": {"workflow": WORKFLOW}}
        )
        assert status == 200, body
        assert body["node_errors"] == {}
        await sock.wait_done(body["prompt_id"])
    history = await api.get(f"/history/{body['prompt_id']}")
    return history[body["prompt_id"]], sock


@pytest.mark.parametrize(
    ("name", "size", "steps"),
    [
        ("flux_img2img", (1024, 768), 20),
        ("flux_img2img_lora", (1024, 768), 20),
        ("flux_img2img_controlnet_canny", (1024, 768), 20),
        ("flux_txt2img", (1024, 1024), 20),
        ("flux_txt2img_controlnet_canny", (1024, 768), 20),
        ("modelfree_scale_invert", (128, 96), 0),
    ],
)
async def test_reference_graph_renders_a_png_of_the_implied_size(
    name: str,
    size: tuple[int, int],
    steps: int,
    comfy: RunningFakeComfyUI,
    session: aiohttp.ClientSession,
    api: ComfyHttp,
) -> None:
    await api.upload(probe_image_png((640, 480)), "input.png")
    prompt = graph(name)

    entry, sock = await _render(comfy, session, prompt)

    assert entry["status"]["status_str"] == "success"
    [output] = entry["outputs"].values()
    [image_ref] = output["images"]
    png = Image.open(io.BytesIO(await api.view(image_ref)))
    assert png.format == "PNG"
    assert png.size == size
    text = getattr(png, "text", {})
    assert json.loads(text["prompt"]) == prompt
    assert json.loads(text["workflow"]) == WORKFLOW
    assert len([f for f in sock.frames if f.type == "progress"]) == steps
    executed = [f.payload["node"] for f in sock.frames if f.type == "executing"]
    assert executed[-1] is None
    assert sorted(n for n in executed if n is not None) == sorted(prompt)


async def test_saved_files_are_named_after_the_prefix_with_a_counter(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    await api.upload(probe_image_png((640, 480)), "input.png")
    prompt = graph("flux_img2img")

    first, _ = await _render(comfy, session, prompt)
    prompt["8"]["inputs"]["seed"] = 43
    second, _ = await _render(comfy, session, prompt)

    assert first["outputs"]["10"]["images"] == [
        {"filename": "img2img_00001_.png", "subfolder": "flux", "type": "output"}
    ]
    assert second["outputs"]["10"]["images"][0]["filename"] == "img2img_00002_.png"


async def test_a_lora_the_server_lacks_is_refused_and_a_configured_one_accepted(
    session: aiohttp.ClientSession,
) -> None:
    async with run_fake_comfyui(FakeComfyUISettings(**FAST)) as comfy:
        api = ComfyHttp(session, comfy.url)
        await api.upload(probe_image_png((640, 480)), "input.png")
        prompt = graph("flux_img2img_lora")

        refused_status, refused = await api.queue(prompt)
        prompt["20"]["inputs"]["lora_name"] = "flux-realism-lora.safetensors"
        accepted_status, _ = await api.queue(prompt)

    assert refused_status == 400
    [error] = refused["node_errors"]["20"]["errors"]
    assert error["type"] == "value_not_in_list"
    assert error["details"] == (
        "lora_name: 'flux_dummy_lora.safetensors' not in "
        "['flux-lora-detailer.safetensors', 'flux-realism-lora.safetensors']"
    )
    assert accepted_status == 200


async def test_a_controlnet_the_server_lacks_is_refused(api: ComfyHttp) -> None:
    prompt = graph("flux_txt2img_controlnet_canny")
    prompt["30"]["inputs"]["control_net_name"] = "flux-depth-controlnet.safetensors"

    status, body = await api.queue(prompt)

    assert status == 400
    assert body["node_errors"]["30"]["errors"][0]["type"] == "value_not_in_list"
    assert body["node_errors"]["30"]["class_type"] == "ControlNetLoader"
