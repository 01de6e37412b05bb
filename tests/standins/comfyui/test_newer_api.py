"""What the stand-in adds for the render service's cleanup: ``SaveImageWebsocket`` (image
frames around its ``progress``, no file, no history output) and, from version 0.26, the
newer API (strict UUID prompt ids, ``/api/jobs`` with per-job status and cancel)."""

from __future__ import annotations

import io
import json
import os
import struct
import uuid
from typing import Any

import aiohttp
import pytest
from PIL import Image

from standins.comfyui import run_fake_comfyui
from tests.standins.comfyui.comfy_client import ComfyHttp, Frame, RecordingSocket
from tests.standins.comfyui.reference import graph, probe_image_png, probe_settings


def _websocket_output() -> dict[str, Any]:
    prompt = graph("flux_img2img")
    prompt["3"]["inputs"].update(width=256, height=192)
    prompt["8"]["inputs"]["steps"] = 2
    prompt["10"] = {"class_type": "SaveImageWebsocket", "inputs": {"images": ["9", 0]}}
    return prompt


def _kind(frame: Frame) -> str:
    if frame.data is None:
        return frame.type
    return f"binary-{struct.unpack('>I', frame.data[:4])[0]}"


@pytest.mark.parametrize(("feature_flags", "order"), [(True, 4), (False, 1)])
async def test_save_image_websocket_sends_the_png_and_writes_nothing(
    feature_flags: bool, order: int
) -> None:
    async with (
        run_fake_comfyui(probe_settings(previews_enabled=False)) as comfy,
        aiohttp.ClientSession() as session,
    ):
        api = ComfyHttp(session, comfy.url)
        await api.upload(probe_image_png(), "input.png")
        async with RecordingSocket(session, comfy.url, "c", feature_flags=feature_flags) as sock:
            _, body = await api.queue(_websocket_output(), client_id="c")
            await sock.wait_done(body["prompt_id"])
        entry = comfy.fake.history[body["prompt_id"]]
        written = [f for _, _, files in os.walk(comfy.fake.output_dir) for f in files]
    frames = [f for f in sock.frames if _kind(f) not in ("progress_state", "status")]
    kinds = [_kind(f) for f in frames]
    save = kinds.index(f"binary-{order}")
    progress = next(
        i for i, f in enumerate(frames) if f.type == "progress" and f.payload["node"] == "10"
    )
    # Type 4 is sent from inside the progress hook (before `progress`); type 1 after it.
    assert save == (progress - 1 if order == 4 else progress + 1)
    frame = next(f.data for f in sock.frames if f.data and _kind(f) == f"binary-{order}")
    if order == 4:
        length = struct.unpack(">I", frame[4:8])[0]
        meta = json.loads(frame[8 : 8 + length])
        assert (meta["node_id"], meta["image_type"]) == ("10", "image/png")
        png = frame[8 + length :]
    else:
        assert struct.unpack(">I", frame[4:8])[0] == 2  # PNG
        png = frame[8:]
    assert Image.open(io.BytesIO(png)).size == (256, 192)
    assert "executed" not in kinds[save:]  # an empty ui: no executed message
    assert entry["outputs"] == {} and written == []


async def test_the_newer_api_refuses_prompt_ids_that_are_not_canonical_uuids() -> None:
    async with (
        run_fake_comfyui(probe_settings(comfyui_version="0.27.0")) as comfy,
        aiohttp.ClientSession() as session,
    ):
        api = ComfyHttp(session, comfy.url)
        status, body = await api.queue(graph("flux_txt2img"), prompt_id="ABC")
        minted = str(uuid.uuid4())
        accepted, answer = await api.queue(graph("flux_txt2img"), prompt_id=minted)
    assert status == 400 and body["error"]["type"] == "invalid_prompt_id"
    assert accepted == 200 and answer["prompt_id"] == minted


async def test_jobs_exist_only_in_the_newer_api() -> None:
    async with (
        run_fake_comfyui(probe_settings()) as comfy,
        aiohttp.ClientSession() as session,
        session.get(f"{comfy.url}/api/jobs") as response,
    ):
        assert response.status == 404


async def test_a_job_is_listed_and_cancelled_while_it_waits_and_while_it_runs() -> None:
    settings = probe_settings(comfyui_version="0.27.0", step_delay_s=0.05)
    async with (
        run_fake_comfyui(settings) as comfy,
        aiohttp.ClientSession() as session,
    ):
        api = ComfyHttp(session, comfy.url)
        ids = [str(uuid.uuid4()) for _ in range(2)]
        prompt = graph("flux_txt2img")
        prompt["8"]["inputs"]["steps"] = 50
        for prompt_id in ids:
            await api.queue(prompt, prompt_id=prompt_id)
        listed = await api.get("/api/jobs", status="pending,in_progress")
        waiting = await api.get(f"/api/jobs/{ids[1]}")
        _, cancelled = await api.post(f"/api/jobs/{ids[1]}/cancel", {})
        bad, refused = await api.post("/api/jobs/cancel", {"job_ids": [ids[0].upper()]})
        _, stopped = await api.post("/api/jobs/cancel", {"job_ids": [ids[0]]})
        await comfy.fake.wait_until_idle(timeout_s=10)
        ended = await api.get(f"/api/jobs/{ids[0]}")
        async with session.get(f"{comfy.url}/api/jobs/{ids[1]}") as gone:
            gone_status = gone.status
    assert {job["id"]: job["status"] for job in listed["jobs"]} == {
        ids[0]: "in_progress",
        ids[1]: "pending",
    }
    assert waiting["status"] == "pending" and cancelled == {"cancelled": True}
    assert bad == 400 and refused["invalid_ids"] == [ids[0].upper()]
    assert stopped == {"cancelled": True} and ended["status"] == "cancelled"
    assert gone_status == 404  # a dequeued job never reaches history
