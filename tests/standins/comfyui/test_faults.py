"""Every fault kind, switched on through settings or at runtime on ``fake.faults``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from standins.comfyui import FaultSettings, RunningFakeComfyUI, run_fake_comfyui
from tests.standins.comfyui.comfy_client import ComfyHttp, RecordingSocket
from tests.standins.comfyui.reference import graph, probe_settings, shape, transcript


def _small_txt2img(seed: int = 42, steps: int = 4) -> dict[str, Any]:
    prompt = graph("flux_txt2img")
    prompt["4"]["inputs"].update(width=64, height=64)
    prompt["8"]["inputs"].update(seed=seed, steps=steps)
    return prompt


def _recorded_execution_error() -> dict[str, Any]:
    frame = next(
        f for f in transcript("flux_error") if f.msg and f.msg["type"] == "execution_error"
    )
    assert frame.msg is not None
    data: dict[str, Any] = frame.msg["data"]
    return data


async def test_refusing_connections_closes_the_port_until_cleared(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    await comfy.refuse_connections()
    with pytest.raises(aiohttp.ClientConnectorError):
        await api.get("/queue")

    await comfy.refuse_connections(False)

    assert await api.get("/prompt") == {"exec_info": {"queue_remaining": 0}}


async def test_refusing_drops_connections_that_were_already_open(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    async with RecordingSocket(session, comfy.url, "c") as sock:
        await sock.wait_for(lambda f: f.type == "status")
        await api.get("/queue")  # leaves a keep-alive connection open
        comfy.fake.faults.refuse_connections = True
        with pytest.raises(aiohttp.ClientError):
            await api.get("/queue")
        await sock.closed.wait()

    assert comfy.fake.counters.connections_refused >= 1


async def test_refusing_from_the_settings_means_nobody_can_connect(
    session: aiohttp.ClientSession,
) -> None:
    settings = probe_settings(faults=FaultSettings(refuse_connections=True))
    async with run_fake_comfyui(settings) as comfy:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get(comfy.url + "/queue")


async def test_a_stopped_server_refuses_and_comes_back_on_the_same_port(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    port = comfy.port
    await comfy.stop()
    with pytest.raises(aiohttp.ClientConnectorError):
        await api.get("/queue")

    await comfy.restart()

    assert comfy.port == port
    assert await api.get("/queue") == {"queue_running": [], "queue_pending": []}


async def test_a_restart_keeps_the_port_closed_for_the_configured_while(
    session: aiohttp.ClientSession,
) -> None:
    async with run_fake_comfyui(probe_settings(restart_s=1.5)) as comfy:
        api = ComfyHttp(session, comfy.url)
        started = time.monotonic()
        restarting = asyncio.create_task(comfy.restart())
        await asyncio.sleep(0.5)  # down by now: stopping takes milliseconds
        with pytest.raises(aiohttp.ClientConnectorError):
            await api.get("/queue")
        await restarting

        assert time.monotonic() - started >= 1.5
        assert await api.get("/prompt") == {"exec_info": {"queue_remaining": 0}}


async def test_delayed_responses_outlast_a_short_client_timeout(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    comfy.fake.faults.http_delay_s = 5.0
    with pytest.raises(TimeoutError):
        await session.get(comfy.url + "/queue", timeout=aiohttp.ClientTimeout(total=0.2))

    comfy.fake.faults.http_delay_s = 0.0
    async with session.get(comfy.url + "/queue") as resp:
        assert resp.status == 200


@pytest.mark.parametrize("route", ["/prompt", "POST /prompt", "*"])
async def test_a_chosen_route_answers_500_like_an_unhandled_exception(
    route: str, comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    comfy.fake.faults.http_500_routes = [route]

    async with session.post(comfy.url + "/api/prompt", json={"prompt": {}}) as resp:
        assert resp.status == 500
        assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert await resp.text() == "500 Internal Server Error\n\nServer got itself in trouble"
    assert comfy.fake.counters.prompt_requests == 0


async def test_a_route_template_fails_only_that_route(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession, api: ComfyHttp
) -> None:
    comfy.fake.faults.http_500_routes = ["/history/{prompt_id}"]

    async with session.get(comfy.url + "/history/abc") as resp:
        assert resp.status == 500
    assert await api.get("/history") == {}


async def test_a_500_count_fails_only_the_next_requests(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    comfy.fake.faults.http_500_routes = ["/queue"]
    comfy.fake.faults.http_500_count = 1

    statuses = []
    for _ in range(2):
        async with session.get(comfy.url + "/queue") as resp:
            statuses.append(resp.status)

    assert statuses == [500, 200]
    assert comfy.fake.counters.http_500_injected == 1


async def test_the_websocket_drops_after_the_chosen_step_while_the_render_goes_on(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    comfy.fake.faults.ws_drop_after_step = 3
    api = ComfyHttp(session, comfy.url)
    async with RecordingSocket(session, comfy.url, "c") as sock:
        _, body = await api.queue(_small_txt2img(steps=8), client_id="c")
        await sock.closed.wait()

    entry = await comfy.fake.wait_for_history(body["prompt_id"])
    progress = [f.payload["value"] for f in sock.frames if f.type == "progress"]
    assert progress == [1, 2, 3]
    assert entry["status"]["status_str"] == "success"
    assert comfy.fake.counters.ws_drops >= 1


@pytest.mark.parametrize("selector", ["CheckpointLoaderSimple", "1"])
async def test_an_execution_error_on_a_chosen_node_looks_like_the_recorded_one(
    selector: str, comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    comfy.fake.faults.execution_error_node = selector
    api = ComfyHttp(session, comfy.url)
    async with RecordingSocket(session, comfy.url, "c") as sock:
        _, body = await api.queue(_small_txt2img(), client_id="c")
        end = await sock.wait_done(body["prompt_id"])

    error = next(m["data"] for m in sock.texts(end=end) if m["type"] == "execution_error")
    recorded = _recorded_execution_error()
    assert shape(error) == shape(recorded)
    assert error["exception_message"] == recorded["exception_message"]
    assert error["exception_type"] == recorded["exception_type"]
    assert error["node_id"] == "1"
    assert sorted(error["current_outputs"]) == sorted(_small_txt2img())
    entry = comfy.fake.history[body["prompt_id"]]
    assert entry["status"]["status_str"] == "error"
    assert comfy.fake.counters.prompts_failed == 1


async def test_an_execution_error_can_carry_a_chosen_type_and_message(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    faults = comfy.fake.faults
    faults.execution_error_node = "VAEDecode"
    faults.execution_error_type = "RuntimeError"
    faults.execution_error_message = "boom"

    _, body = await api.queue(_small_txt2img())
    entry = await comfy.fake.wait_for_history(body["prompt_id"])

    error = dict(entry["status"]["messages"])["execution_error"]
    assert (error["node_id"], error["node_type"]) == ("9", "VAEDecode")
    assert (error["exception_type"], error["exception_message"]) == ("RuntimeError", "boom\n")
    assert set(error["executed"]) == {"1", "4", "5", "6", "7", "8"}
    assert set(error["current_inputs"]) == {"samples", "vae"}


async def test_out_of_memory_in_the_sampler_is_reported_as_torch_reports_it(
    comfy: RunningFakeComfyUI, session: aiohttp.ClientSession
) -> None:
    comfy.fake.faults.oom_node = "KSampler"
    comfy.fake.faults.oom_after_step = 2
    api = ComfyHttp(session, comfy.url)
    async with RecordingSocket(session, comfy.url, "c") as sock:
        _, body = await api.queue(_small_txt2img(steps=6), client_id="c")
        end = await sock.wait_done(body["prompt_id"])

    texts = sock.texts(end=end)
    assert [m["data"]["value"] for m in texts if m["type"] == "progress"] == [1, 2]
    error = next(m["data"] for m in texts if m["type"] == "execution_error")
    assert error["exception_type"] == "torch.OutOfMemoryError"
    assert error["exception_message"] == (
        "Allocation on device \nThis error means you ran out of memory on your GPU.\n\n"
        "TIPS: If the workflow worked before you might have accidentally set the batch_size "
        "to a large number."
    )
    assert error["node_type"] == "KSampler"


async def test_out_of_memory_in_a_plain_node_fails_it_at_start(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    comfy.fake.faults.oom_node = "VAEDecode"

    _, body = await api.queue(_small_txt2img())
    entry = await comfy.fake.wait_for_history(body["prompt_id"])

    error = dict(entry["status"]["messages"])["execution_error"]
    assert (error["node_type"], error["exception_type"]) == ("VAEDecode", "torch.OutOfMemoryError")


async def test_a_slow_queue_keeps_prompts_pending_for_a_while(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    comfy.fake.faults.queue_delay_s = 1.0

    _, body = await api.queue(_small_txt2img())
    queue = await api.get("/queue")
    entry = await comfy.fake.wait_for_history(body["prompt_id"])

    assert [item[1] for item in queue["queue_pending"]] == [body["prompt_id"]]
    assert entry["status"]["status_str"] == "success"


async def test_a_held_queue_runs_nothing_until_released(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    comfy.fake.faults.hold_queue = True
    _, body = await api.queue(_small_txt2img())
    assert comfy.fake.queued_ids == [body["prompt_id"]]
    assert comfy.fake.counters.prompts_started == 0

    comfy.fake.faults.hold_queue = False

    await comfy.fake.wait_for_history(body["prompt_id"])
    assert comfy.fake.counters.prompts_started == 1


async def test_faults_reset_switches_everything_off(comfy: RunningFakeComfyUI) -> None:
    faults = comfy.fake.faults
    faults.http_delay_s = 3
    faults.http_500_routes = ["*"]
    faults.oom_node = "KSampler"

    faults.reset()

    assert faults.model_dump() == FaultSettings().model_dump()
