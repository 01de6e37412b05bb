"""The fake answers the recorded requests of http_examples.md like the real server did."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest
from PIL import Image

from standins.comfyui import RunningFakeComfyUI
from tests.standins.comfyui.comfy_client import ComfyHttp
from tests.standins.comfyui.reference import http_examples, probe_image_png, shape

EXAMPLES = http_examples()
VALIDATION_EXAMPLES = sorted(t for t in EXAMPLES if t[0] == "I" and t[1].isdigit())


def _without_volatile(value: Any) -> Any:
    """Drop prompt ids/numbers (random per run) and reduce tracebacks to their shape."""
    if isinstance(value, dict):
        return {
            key: shape(item)
            if key in ("traceback", "prompt_id", "number")
            else _without_volatile(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    return value


async def _post_raw(session: aiohttp.ClientSession, url: str, body: str) -> tuple[int, str, str]:
    headers = {"Content-Type": "application/json"}
    async with session.post(url + "/prompt", data=body, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


@pytest.mark.parametrize("title", VALIDATION_EXAMPLES)
async def test_prompt_answers_match_the_recorded_bodies(
    title: str, comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    example = EXAMPLES[title]
    await api.upload(probe_image_png(), "probe_input.png")

    assert example.request_body is not None
    status, content_type, body = await _post_raw(session, comfy.url, example.request_body)

    assert status == example.status
    assert content_type == example.content_type
    if content_type.startswith("application/json"):
        assert _without_volatile(json.loads(body)) == _without_volatile(example.response_json())
    else:
        assert body.strip() == (example.response_body or "").strip()


@pytest.mark.parametrize(
    "path",
    ["/queue", "/prompt", "/features", "/history?max_items=1", "/models", "/embeddings"],
)
async def test_basic_gets_answer_the_recorded_bodies(
    path: str, comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    example = EXAMPLES[f"GET {path}"]
    async with session.get(comfy.url + path) as resp:
        assert resp.status == example.status
        assert resp.headers["Content-Type"] == example.content_type
        assert await resp.json() == example.response_json()


async def test_system_stats_has_the_recorded_shape(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    stats = await api.get("/system_stats")

    recorded = EXAMPLES["GET /system_stats"].response_json()
    assert shape(stats["system"]) == shape(recorded["system"])
    assert [list(d) for d in stats["devices"]] == [list(d) for d in recorded["devices"]]


async def test_object_info_of_a_class_is_the_real_schema_in_the_real_key_order(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    async with session.get(comfy.url + "/object_info/ImageInvert") as resp:
        text = await resp.text()

    recorded = EXAMPLES["GET /object_info/ImageInvert"].response_json()
    assert json.loads(text) == recorded
    assert list(json.loads(text)["ImageInvert"]) == list(recorded["ImageInvert"])


async def test_object_info_of_an_unknown_class_is_an_empty_object(api: ComfyHttp) -> None:
    assert await api.get("/object_info/NoSuchNode") == {}


async def test_upload_answers_follow_section_b(api: ComfyHttp) -> None:
    first = probe_image_png()
    other = probe_image_png(color=99)

    assert await api.upload(first, "probe_input.png", type="input", overwrite="true") == (
        200,
        {"name": "probe_input.png", "subfolder": "", "type": "input"},
    )
    assert (await api.upload(first, "probe_input.png"))[1] == {
        "name": "probe_input.png",
        "subfolder": "",
        "type": "input",
    }
    assert (await api.upload(other, "probe_input.png"))[1] == {
        "name": "probe_input (1).png",
        "subfolder": "",
        "type": "input",
    }
    assert (await api.upload(first, "probe_input.png", subfolder="probe_sub"))[1] == {
        "name": "probe_input.png",
        "subfolder": "probe_sub",
        "type": "input",
    }


async def test_upload_without_an_image_part_is_an_empty_400(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    async with session.post(comfy.url + "/upload/image", data={"type": "input"}) as resp:
        assert resp.status == 400
        assert await resp.read() == b""


async def test_upload_with_an_unknown_type_is_a_plain_500(api: ComfyHttp) -> None:
    status, _ = await api.upload(probe_image_png(), "x.png", type="models")
    assert status == 500


def _section_c_request() -> dict[str, Any]:
    request: dict[str, Any] = EXAMPLES["C. Model-free run: POST /prompt"].request_json()
    return request


async def test_model_free_run_history_has_the_recorded_shape(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    await api.upload(probe_image_png(), "probe_input.png")
    request = _section_c_request()

    status, body = await api.post("/prompt", request)
    entry = await comfy.fake.wait_for_history(body["prompt_id"])

    assert status == 200
    recorded = EXAMPLES["GET /history/{prompt_id} after completion"].response_json()
    recorded_entry = next(iter(recorded.values()))
    history = await api.get(f"/history/{body['prompt_id']}")
    assert shape(history[body["prompt_id"]]) == shape(recorded_entry)
    assert entry["prompt"][3] == recorded_entry["prompt"][3]
    assert entry["outputs"]["6"] == recorded_entry["outputs"]["6"]


async def test_view_serves_pngs_with_the_recorded_headers(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    await api.upload(probe_image_png(), "probe_input.png")
    _, body = await api.post("/prompt", _section_c_request())
    await comfy.fake.wait_for_history(body["prompt_id"])
    base = comfy.url + "/view?filename=modelfree_00001_.png&subfolder=probe&type=output"

    async with session.get(base) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["Content-Disposition"] == 'filename="modelfree_00001_.png"'
        assert "Cache-Control" not in resp.headers
        assert (await resp.read())[:8] == bytes.fromhex("89504e470d0a1a0a")
    async with session.get(base + "&preview=jpeg%3B80") as resp:
        assert resp.headers["Content-Type"] == "image/jpeg"
        assert (await resp.read())[:2] == b"\xff\xd8"
    async with session.get(base + "&channel=rgb") as resp:
        assert Image.open(io.BytesIO(await resp.read())).mode == "RGB"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("filename=nope.png&type=output", 404),
        ("filename=..%2Fsecret.png&type=output", 400),
        ("filename=modelfree_00001_.png&type=bogus", 400),
        ("filename=x.png&type=output&subfolder=../../etc", 403),
        ("type=output", 404),
    ],
)
async def test_view_refuses_like_the_real_server(
    query: str, status: int, comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{comfy.url}/view?{query}") as resp:
        assert resp.status == status
        assert await resp.read() == b""


async def test_every_route_is_also_served_under_api(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    for path in ("/queue", "/prompt", "/system_stats", "/object_info/ImageInvert", "/models"):
        async with session.get(comfy.url + "/api" + path) as resp:
            assert resp.status == 200, path


async def test_a_foreign_origin_gets_403_on_a_loopback_server(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    body: dict[str, Any] = {"prompt": {}}
    headers = {"Origin": "http://evil.example"}
    async with session.post(comfy.url + "/api/prompt", json=body, headers=headers) as resp:
        assert resp.status == 403
        assert await resp.read() == b""


async def test_min_and_max_are_enforced_for_v3_nodes_too(api: ComfyHttp) -> None:
    prompt: dict[str, Any] = EXAMPLES[
        "H7. txt2img with width/height 1000 (not a multiple of 16)"
    ].request_json()["prompt"]
    prompt["4"]["inputs"].update(width=8, height=8)
    prompt["6"]["inputs"]["guidance"] = 150

    status, body = await api.queue(prompt)

    assert status == 400
    found = {
        nid: [f"{e['type']}: {e['details']}" for e in err["errors"]]
        for nid, err in body["node_errors"].items()
    }
    assert found == {
        "4": ["value_smaller_than_min: width", "value_smaller_than_min: height"],
        "6": ["value_bigger_than_max: guidance"],
    }
