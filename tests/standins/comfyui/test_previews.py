"""Sampler preview frames: type 4 with metadata for clients that sent the feature flag,
type 1 (format + JPEG) for the others; the GetImageSize TEXT frame goes to everyone."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import aiohttp
import pytest
from PIL import Image

from standins.comfyui import run_fake_comfyui
from tests.standins.comfyui.comfy_client import ComfyHttp, RecordingSocket
from tests.standins.comfyui.reference import graph, probe_image_png, probe_settings


def _small_img2img() -> dict[str, Any]:
    prompt = graph("flux_img2img")
    prompt["3"]["inputs"].update(width=256, height=192)
    prompt["8"]["inputs"]["steps"] = 3
    return prompt


async def _binary_frames(*, feature_flags: bool) -> list[bytes]:
    async with (
        run_fake_comfyui(probe_settings(previews_enabled=True)) as comfy,
        aiohttp.ClientSession() as session,
    ):
        api = ComfyHttp(session, comfy.url)
        await api.upload(probe_image_png(), "input.png")
        async with RecordingSocket(session, comfy.url, "c", feature_flags=feature_flags) as sock:
            _, body = await api.queue(_small_img2img(), client_id="c")
            await sock.wait_done(body["prompt_id"])
    return [f.data for f in sock.frames if f.data is not None]


async def test_clients_with_the_feature_flag_get_previews_with_metadata() -> None:
    frames = await _binary_frames(feature_flags=True)

    assert len(frames) == 3
    for frame in frames:
        event, length = struct.unpack(">II", frame[:8])
        metadata = json.loads(frame[8 : 8 + length])
        image = Image.open(io.BytesIO(frame[8 + length :]))
        assert event == 4
        assert metadata == {
            "node_id": "8",
            "prompt_id": metadata["prompt_id"],
            "display_node_id": "8",
            "parent_node_id": None,
            "real_node_id": "8",
            "image_type": "image/jpeg",
        }
        assert (image.format, image.size) == ("JPEG", (32, 24))


async def test_other_clients_get_plain_jpeg_previews() -> None:
    frames = await _binary_frames(feature_flags=False)

    assert len(frames) == 3
    for frame in frames:
        assert struct.unpack(">II", frame[:8]) == (1, 1)
        assert Image.open(io.BytesIO(frame[8:])).format == "JPEG"


@pytest.mark.parametrize("client_id", ["owner", None])
async def test_get_image_size_text_goes_to_every_socket(client_id: str | None) -> None:
    async with (
        run_fake_comfyui(probe_settings()) as comfy,
        aiohttp.ClientSession() as session,
    ):
        api = ComfyHttp(session, comfy.url)
        await api.upload(probe_image_png(), "input.png")
        async with RecordingSocket(session, comfy.url, "someone-else") as other:
            fields = {"client_id": client_id} if client_id else {}
            _, body = await api.queue(graph("modelfree_scale_invert"), **fields)
            await comfy.fake.wait_for_history(body["prompt_id"])
            index = await other.wait_for(lambda f: f.data is not None)

    frame = other.frames[index].data
    assert frame is not None
    assert frame[:8] == bytes.fromhex("0000000300000001")
    assert frame[8:] == b"3width: 128, height: 96\n batch size: 1"
