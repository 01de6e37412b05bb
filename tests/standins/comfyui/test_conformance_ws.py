"""Replaying the recorded sessions gives the recorded websocket traffic, message by message.

Each scenario drives the fake the way the probe drove the real server and compares, per
socket, the sequence of (message type, shape of data) and of binary frame headers with the
``ws_transcript_*.jsonl`` recordings.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from standins.comfyui import FakeComfyUISettings, run_fake_comfyui
from tests.standins.comfyui.comfy_client import ComfyHttp, Frame, RecordingSocket
from tests.standins.comfyui.reference import (
    FAST,
    TranscriptFrame,
    http_examples,
    probe_image_png,
    probe_settings,
    shape,
    transcript,
)

EXAMPLES = http_examples()

# A prompt that only loads the probe image: run before a recording starts so that, as in
# the recordings, LoadImage is already cached.
WARM_UP = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "probe_input.png"}},
    "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
}


def _recorded(frames: list[TranscriptFrame], socket: str = "-") -> list[Any]:
    out: list[Any] = []
    for f in frames:
        if f.socket != socket or f.direction != "server->client":
            continue
        if f.kind == "text":
            assert f.msg is not None
            out.append((f.msg["type"], shape(f.msg["data"])))
        elif f.kind == "binary":
            out.append(("binary", f.first8_hex, f.length))
    return out


def _received(frames: list[Frame]) -> list[Any]:
    out: list[Any] = []
    for f in frames:
        if f.msg is not None:
            out.append((f.msg["type"], shape(f.msg["data"])))
        else:
            assert f.data is not None
            out.append(("binary", f.data[:8].hex(), len(f.data)))
    return out


def _request(title: str) -> dict[str, Any]:
    body: dict[str, Any] = EXAMPLES[title].request_json()
    return body


async def _warm_up(api: ComfyHttp, fake_wait: Any) -> None:
    status, body = await api.queue(WARM_UP, client_id="warm-up")
    assert status == 200
    await fake_wait(body["prompt_id"])


def _is_idle_status(frame: Frame) -> bool:
    return frame.type == "status" and frame.payload["status"]["exec_info"]["queue_remaining"] == 0


async def test_model_free_runs_match_the_owner_and_observer_transcripts() -> None:
    async with (
        run_fake_comfyui(probe_settings()) as comfy,
        aiohttp.ClientSession() as session,
    ):
        api = ComfyHttp(session, comfy.url)
        await api.upload(probe_image_png(), "probe_input.png")
        owner_socket = RecordingSocket(
            session, comfy.url, "probe-owner-2cfa9547", feature_flags=True
        )
        async with (
            owner_socket as owner,
            RecordingSocket(session, comfy.url, "probe-observer-011e1a47") as observer,
        ):
            await owner.wait_for(lambda f: f.type == "feature_flags")
            await observer.wait_for(lambda f: f.type == "status")
            for title in (
                "C. Model-free run: POST /prompt",
                "D. Same graph queued again (all nodes cached)",
                "E. Client-supplied prompt_id",
                "F. Descriptive (non-numeric) node ids",
            ):
                status, body = await api.post("/prompt", _request(title))
                assert status == 200
                await owner.wait_done(body["prompt_id"])
            marks = (len(owner.frames), len(observer.frames))
            status, body = await api.post("/prompt", _request("G. Prompt without client_id"))
            await comfy.fake.wait_for_history(body["prompt_id"])
            await owner.wait_for(_is_idle_status, start=marks[0])
            await observer.wait_for(_is_idle_status, start=marks[1])

    recorded = transcript("modelfree")
    assert _received(owner.frames) == _recorded(recorded, "owner")
    assert _received(observer.frames) == _recorded(recorded, "observer")


async def test_flux_runs_that_fail_in_the_loader_match_the_error_transcript() -> None:
    settings = probe_settings()
    async with run_fake_comfyui(settings) as comfy, aiohttp.ClientSession() as session:
        api = ComfyHttp(session, comfy.url)
        await api.upload(probe_image_png(), "probe_input.png")
        await _warm_up(api, comfy.fake.wait_for_history)
        # The probe's checkpoint files were dummies: loading them failed.
        comfy.fake.faults.execution_error_node = "CheckpointLoaderSimple"
        async with RecordingSocket(session, comfy.url, "probe-flux-51599cfa") as sock:
            await sock.wait_for(lambda f: f.type == "status")
            for title in [
                t for t in EXAMPLES if t[:2] in ("H1", "H2", "H3", "H4", "H5", "H6", "H7")
            ] + [
                "I15. bad value for a V3-schema combo (ImageScaleToTotalPixels.upscale_method)",
                "I16. numeric strings for INT/FLOAT (coerced, accepted)",
                "I17. one good and one broken output node (partial acceptance)",
            ]:
                status, body = await api.post("/prompt", _request(title))
                assert status == 200, title
                await sock.wait_done(body["prompt_id"])

    assert _received(sock.frames) == _recorded(transcript("flux_error"))
    errors = [f.payload for f in sock.frames if f.type == "execution_error"]
    assert errors[0]["exception_message"] == "Error while deserializing header: header too small\n"
    assert errors[0]["exception_type"] == "safetensors._safetensors_rust.SafetensorError"
    assert errors[0]["current_inputs"] == {"ckpt_name": ["flux1-dev-fp8.safetensors"]}
    v3_combo_error = next(e for e in errors if e["node_type"] == "ImageScaleToTotalPixels")
    assert v3_combo_error["exception_type"] == "NotImplementedError"
    assert "(got no_such_method)" in v3_combo_error["exception_message"]


def _slow_job() -> dict[str, Any]:
    nodes: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "probe_input.png"}}
    }
    previous = "1"
    for n in range(10, 16):
        nodes[str(n)] = {
            "class_type": "ImageScale",
            "inputs": {
                "image": [previous, 0],
                "upscale_method": "lanczos",
                "width": 64 + n,
                "height": 48,
                "crop": "disabled",
            },
        }
        previous = str(n)
    nodes["16"] = {"class_type": "ImageInvert", "inputs": {"image": [previous, 0]}}
    nodes["99"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["16", 0], "filename_prefix": "probe/slow"},
    }
    return nodes


async def test_queue_delete_and_interrupts_match_the_interrupt_transcript() -> None:
    # Slow nodes leave time to act while one runs; an interrupt waits for the next node.
    async with (
        run_fake_comfyui(probe_settings(node_delay_s=0.4)) as comfy,
        aiohttp.ClientSession() as session,
    ):
        api = ComfyHttp(session, comfy.url)
        await api.upload(probe_image_png(), "probe_input.png")
        await _warm_up(api, comfy.fake.wait_for_history)
        client = "probe-intr-338edec5"
        ids = {job: f"probe-slow-{job}" for job in "ABCDE"}

        def executing(node: str, job: str) -> Any:
            return lambda f: (
                f.type == "executing"
                and f.payload
                == {
                    "node": node,
                    "display_node": node,
                    "prompt_id": ids[job],
                }
            )

        async with RecordingSocket(session, comfy.url, client) as sock:
            await sock.wait_for(lambda f: f.type == "status")
            await api.queue(_slow_job(), client_id=client, prompt_id=ids["A"])
            await sock.wait_for(executing("10", "A"))
            await api.queue(_slow_job(), client_id=client, prompt_id=ids["B"])
            await api.queue(_slow_job(), client_id=client, prompt_id=ids["C"])
            assert (await api.post("/queue", {"delete": [ids["B"]]}))[0] == 200
            assert (await api.post("/interrupt", {"prompt_id": ids["C"]}))[0] == 200
            assert comfy.fake.queued_ids == [ids["C"]]
            assert (await api.post("/interrupt", {"prompt_id": ids["A"]}))[0] == 200
            await sock.wait_done(ids["A"])
            await sock.wait_for(executing("12", "C"))
            async with session.post(comfy.url + "/interrupt") as resp:
                assert resp.status == 200
            await sock.wait_done(ids["C"])
            await api.queue(_slow_job(), client_id=client, prompt_id=ids["D"])
            await sock.wait_for(executing("13", "D"))
            await api.queue(_slow_job(), client_id=client, prompt_id=ids["E"])
            assert (await api.post("/queue", {"clear": True}))[0] == 200
            await api.post("/interrupt", {"prompt_id": ids["D"]})
            await sock.wait_done(ids["D"])

        history = comfy.fake.history
        assert ids["B"] not in history and ids["E"] not in history
        for job in "ACD":
            assert history[ids[job]]["status"]["status_str"] == "error"
            assert history[ids[job]]["outputs"] == {}

    assert _received(sock.frames) == _recorded(transcript("interrupt"))
    interrupted = [f.payload for f in sock.frames if f.type == "execution_interrupted"]
    assert [(m["node_id"], m["executed"]) for m in interrupted] == [
        ("11", ["10"]),
        ("13", ["11", "12"]),
        ("14", ["13"]),
    ]


async def test_progress_of_a_tiled_upscale_matches_the_progress_transcript() -> None:
    async with run_fake_comfyui(probe_settings()) as comfy, aiohttp.ClientSession() as session:
        api = ComfyHttp(session, comfy.url)
        await api.upload(probe_image_png(), "probe_input.png")
        await _warm_up(api, comfy.fake.wait_for_history)
        title = (
            "K. Real `progress` messages (tiled upscale with a tiny random-weight upscale model)"
        )
        async with RecordingSocket(
            session, comfy.url, "probe-prog-bbbde08a", feature_flags=True
        ) as sock:
            await sock.wait_for(lambda f: f.type == "feature_flags")
            status, body = await api.post("/prompt", _request(title))
            assert status == 200
            await sock.wait_done(body["prompt_id"])

    assert _received(sock.frames) == _recorded(transcript("progress_upscale"))
    progress = [f.payload for f in sock.frames if f.type == "progress"]
    assert [(p["value"], p["max"], p["node"]) for p in progress] == [
        (n, 9, "4") for n in range(1, 10)
    ]


async def test_a_server_without_a_preview_method_sends_no_preview_frames() -> None:
    settings = FakeComfyUISettings(previews_enabled=False, **FAST)
    async with run_fake_comfyui(settings) as comfy, aiohttp.ClientSession() as session:
        api = ComfyHttp(session, comfy.url)
        prompt = _request("H2. txt2img (EmptySD3LatentImage)")["prompt"]
        prompt["4"]["inputs"].update(width=64, height=64)
        prompt["8"]["inputs"]["steps"] = 3
        async with RecordingSocket(session, comfy.url, "c1", feature_flags=True) as sock:
            _, body = await api.queue(prompt, client_id="c1")
            await sock.wait_done(body["prompt_id"])

    assert [f for f in sock.frames if f.data is not None] == []
    assert [f.payload["value"] for f in sock.frames if f.type == "progress"] == [1, 2, 3]
