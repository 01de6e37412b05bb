"""Queue, interrupt, cache and websocket routing behave like ComfyUI's."""

from __future__ import annotations

import os
import re
from typing import Any

import aiohttp

from standins.comfyui import RunningFakeComfyUI, run_fake_comfyui
from tests.standins.comfyui.comfy_client import ComfyHttp, RecordingSocket
from tests.standins.comfyui.reference import graph, probe_image_png, probe_settings


def _small_txt2img(seed: int = 42, steps: int = 4) -> dict[str, Any]:
    prompt = graph("flux_txt2img")
    prompt["4"]["inputs"].update(width=64, height=64)
    prompt["8"]["inputs"].update(seed=seed, steps=steps)
    return prompt


async def test_prompts_run_first_in_first_out_and_front_jumps_the_queue(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    comfy.fake.faults.hold_queue = True
    numbers = []
    for n, front in ((1, False), (2, False), (3, True)):
        status, body = await api.queue(_small_txt2img(seed=n), prompt_id=f"p{n}", front=front)
        assert status == 200
        numbers.append(body["number"])

    assert comfy.fake.queued_ids == ["p3", "p1", "p2"]
    comfy.fake.faults.hold_queue = False
    await comfy.fake.wait_until_idle()
    assert list(comfy.fake.history) == ["p3", "p1", "p2"]
    assert numbers == [0, 1, -2]


async def test_queue_lists_five_element_items_while_pending(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    comfy.fake.faults.hold_queue = True
    prompt = _small_txt2img()
    prompt["8"]["inputs"]["steps"] = "4"  # numeric strings are coerced in place

    await api.queue(prompt, client_id="me", prompt_id="job-1", extra_data={"k": "v"})
    queue = await api.get("/queue")

    assert queue["queue_running"] == []
    [item] = queue["queue_pending"]
    assert item[:2] == [0, "job-1"]
    assert item[2]["8"]["inputs"]["steps"] == 4
    assert item[3] == {"k": "v", "client_id": "me"}
    assert item[4] == ["10"]
    assert await api.get("/prompt") == {"exec_info": {"queue_remaining": 1}}


async def test_deleting_pending_prompts_leaves_no_history(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    comfy.fake.faults.hold_queue = True
    for n in range(3):
        await api.queue(_small_txt2img(seed=n), prompt_id=f"job-{n}")

    status, _ = await api.post("/queue", {"delete": ["job-1", "unknown-id"]})
    comfy.fake.faults.hold_queue = False
    await comfy.fake.wait_until_idle()

    assert status == 200
    assert comfy.fake.deleted_ids == ["job-1"]
    assert set(comfy.fake.history) == {"job-0", "job-2"}
    assert await api.get("/history/job-1") == {}


async def test_clearing_the_queue_keeps_the_running_prompt(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    comfy.fake.settings.step_delay_s = 0.05
    async with RecordingSocket(session, comfy.url, "c") as sock:
        await api.queue(_small_txt2img(steps=10), client_id="c", prompt_id="running")
        await sock.wait_for(lambda f: f.type == "progress")
        await api.queue(_small_txt2img(seed=2), client_id="c", prompt_id="pending")
        await api.post("/queue", {"clear": True})
        await sock.wait_done("running")

    assert list(comfy.fake.history) == ["running"]
    assert comfy.fake.counters.queue_clears == 1


async def test_interrupting_a_sampler_stops_it_at_the_next_step(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    comfy.fake.settings.step_delay_s = 0.05
    async with RecordingSocket(session, comfy.url, "c") as sock:
        _, body = await api.queue(_small_txt2img(steps=50), client_id="c")
        pid = body["prompt_id"]
        await sock.wait_for(lambda f: f.type == "progress" and f.payload["value"] == 2)
        assert (await api.post("/interrupt", {"prompt_id": pid}))[0] == 200
        end = await sock.wait_done(pid)

    texts = sock.texts(end=end + 1)
    interrupted = next(m["data"] for m in texts if m["type"] == "execution_interrupted")
    assert interrupted["node_id"] == "8"
    assert interrupted["node_type"] == "KSampler"
    assert set(interrupted["executed"]) == {"1", "4", "5", "6", "7"}
    assert [m["type"] for m in texts[-3:]] == ["execution_interrupted", "status", "executing"]
    assert max(m["data"]["value"] for m in texts if m["type"] == "progress") < 50
    entry = comfy.fake.history[pid]
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["completed"] is False
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_interrupted",
    ]
    assert entry["outputs"] == {}
    assert comfy.fake.counters.interrupts_received == 1


async def test_an_interrupt_for_a_prompt_that_is_not_running_does_nothing(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    comfy.fake.faults.hold_queue = True
    await api.queue(_small_txt2img(), prompt_id="waiting")

    assert (await api.post("/interrupt", {"prompt_id": "waiting"}))[0] == 200
    comfy.fake.faults.hold_queue = False
    entry = await comfy.fake.wait_for_history("waiting")

    assert entry["status"]["status_str"] == "success"
    assert comfy.fake.interrupt_requests == ["waiting"]


async def test_an_identical_resubmission_is_served_from_the_cache(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    prompt = _small_txt2img()
    async with RecordingSocket(session, comfy.url, "c") as sock:
        _, first = await api.queue(prompt, client_id="c")
        mark = await sock.wait_done(first["prompt_id"])
        _, second = await api.queue(prompt, client_id="c")
        await sock.wait_done(second["prompt_id"], start=mark + 1)

    later = sock.texts(start=mark + 1)
    cached = next(m["data"]["nodes"] for m in later if m["type"] == "execution_cached")
    assert cached == list(prompt)
    assert [m["type"] for m in later if m["type"] in ("executing", "progress")] == ["executing"]
    history = comfy.fake.history
    assert history[first["prompt_id"]]["outputs"] == history[second["prompt_id"]]["outputs"]
    assert os.listdir(os.path.join(comfy.fake.output_dir, "flux")) == ["txt2img_00001_.png"]


async def test_a_new_seed_reruns_only_the_sampler_and_what_follows(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    _, first = await api.queue(_small_txt2img(seed=1))
    await comfy.fake.wait_for_history(first["prompt_id"])
    _, second = await api.queue(_small_txt2img(seed=2))

    entry = await comfy.fake.wait_for_history(second["prompt_id"])

    messages = dict((name, data) for name, data in entry["status"]["messages"])
    assert messages["execution_cached"]["nodes"] == ["1", "4", "5", "6", "7"]


async def test_prompt_messages_go_to_the_owner_and_status_to_everyone(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    async with (
        RecordingSocket(session, comfy.url, "owner") as owner,
        RecordingSocket(session, comfy.url, "observer") as observer,
    ):
        _, body = await api.queue(_small_txt2img(), client_id="owner")
        await owner.wait_done(body["prompt_id"])
        await observer.wait_for(
            lambda f: (
                f.type == "status" and f.payload["status"]["exec_info"]["queue_remaining"] == 0
            )
        )

    assert {m["type"] for m in observer.texts()} == {"status"}
    assert {"execution_start", "executing", "progress", "executed"} <= {
        m["type"] for m in owner.texts()
    }


async def test_a_socket_without_client_id_gets_a_generated_sid(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    async with RecordingSocket(session, comfy.url) as sock:
        await sock.wait_for(lambda f: f.type == "status")

    assert re.fullmatch(r"[0-9a-f]{32}", sock.frames[0].payload["sid"])


async def test_reconnecting_during_a_render_reports_the_current_node(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    comfy.fake.settings.step_delay_s = 0.05
    async with RecordingSocket(session, comfy.url, "me") as first:
        _, body = await api.queue(_small_txt2img(steps=20), client_id="me")
        await first.wait_for(lambda f: f.type == "progress")
    async with RecordingSocket(session, comfy.url, "me") as second:
        await second.wait_for(lambda f: f.type == "executing")
        await second.wait_done(body["prompt_id"])

    assert second.frames[1].msg == {"type": "executing", "data": {"node": "8"}}


async def test_history_lists_entries_and_can_be_deleted(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    for n in range(3):
        _, body = await api.queue(_small_txt2img(seed=n), prompt_id=f"h{n}")
        await comfy.fake.wait_for_history(body["prompt_id"])

    assert list(await api.get("/history")) == ["h0", "h1", "h2"]
    assert list(await api.get("/history", max_items=2)) == ["h1", "h2"]
    assert list(await api.get("/history", max_items=1, offset=0)) == ["h0"]
    await api.post("/history", {"delete": ["h1"]})
    assert list(await api.get("/history")) == ["h0", "h2"]
    await api.post("/history", {"clear": True})
    assert await api.get("/history") == {}


async def test_prompt_numbers_count_every_request_with_a_json_body(api: ComfyHttp) -> None:
    await api.post("/prompt", {"client_id": "no prompt"})
    _, accepted = await api.queue(_small_txt2img())
    _, explicit = await api.queue(_small_txt2img(seed=5), number=7)

    assert accepted["number"] == 1
    assert explicit["number"] == 7.0
    assert isinstance(explicit["number"], float)


async def test_uploaded_images_appear_in_load_image_choices(api: ComfyHttp) -> None:
    await api.upload(probe_image_png(), "mine.png")
    await api.upload(probe_image_png(), "nested.png", subfolder="sub")
    await api.upload(b"not an image", "notes.txt")

    info = await api.get("/object_info/LoadImage")

    assert info["LoadImage"]["input"]["required"]["image"][0] == ["example.png", "mine.png"]


async def test_a_restart_forgets_queue_history_and_cache_but_keeps_files_and_port() -> None:
    async with run_fake_comfyui(probe_settings()) as comfy, aiohttp.ClientSession() as s:
        api = ComfyHttp(s, comfy.url)
        await api.upload(probe_image_png(), "kept.png")
        _, body = await api.queue(_small_txt2img())
        await comfy.fake.wait_for_history(body["prompt_id"])
        url = comfy.url

        await comfy.restart()

        assert comfy.url == url
        assert await api.get("/history") == {}
        _, again = await api.queue(_small_txt2img())
        entry = await comfy.fake.wait_for_history(again["prompt_id"])
        assert again["number"] == 0
        assert dict(entry["status"]["messages"])["execution_cached"]["nodes"] == []
        assert entry["outputs"]["10"]["images"][0]["filename"] == "txt2img_00002_.png"
        info = await api.get("/object_info/LoadImage")
        assert "kept.png" in info["LoadImage"]["input"]["required"]["image"][0]


async def test_free_memory_drops_the_cache_so_the_same_graph_runs_again(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    _, first = await api.queue(_small_txt2img())
    await comfy.fake.wait_for_history(first["prompt_id"])

    assert (await api.post("/free", {"unload_models": True, "free_memory": True}))[0] == 200
    _, second = await api.queue(_small_txt2img())
    entry = await comfy.fake.wait_for_history(second["prompt_id"])

    assert dict(entry["status"]["messages"])["execution_cached"]["nodes"] == []
    assert entry["outputs"]["10"]["images"][0]["filename"] == "txt2img_00002_.png"
