"""The ComfyUI transport against the stand-in: refusals, dispatch by prompt id, reconnects."""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from services.common.retry import RetryPolicy
from services.render.comfyui.client import ComfyUIClient
from services.render.comfyui.errors import ComfyUIRefusedError, ComfyUIUnavailableError
from services.render.comfyui.messages import (
    QueueSnapshot,
    SocketState,
    WsMessage,
    decode_preview_frame,
)
from standins.comfyui.server import RunningFakeComfyUI, run_fake_comfyui
from tests.render.conftest import fake_settings

GRAPHS = Path(__file__).parents[2] / "fixtures" / "comfyui" / "graphs"


def _graph(name: str) -> dict[str, Any]:
    graph: dict[str, Any] = json.loads((GRAPHS / name).read_text())
    return graph


@asynccontextmanager
async def comfy_client() -> AsyncIterator[tuple[ComfyUIClient, RunningFakeComfyUI]]:
    """A client with its websocket open, on a fresh stand-in."""
    async with run_fake_comfyui(fake_settings(step_delay_s=0.005), port=0) as running:
        client = ComfyUIClient(
            running.url,
            client_id=f"test-{uuid.uuid4().hex}",
            retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01),
            reconnect_max_s=0.1,
        )
        client.start()
        try:
            assert await client.wait_connected(5.0)
            yield client, running
        finally:
            await client.aclose()


async def _model_free_graph() -> dict[str, Any]:
    graph = _graph("modelfree_scale_invert.json")
    graph["1"]["inputs"]["image"] = "example.png"
    return graph


async def test_a_partially_accepted_prompt_is_a_refusal() -> None:
    graph = await _model_free_graph()
    graph["7"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["99", 0], "filename_prefix": "x"},
    }
    async with comfy_client() as (client, comfy):
        with pytest.raises(ComfyUIRefusedError) as refused:
            await client.queue_prompt(graph, "p-partial")
        assert comfy.fake.submitted[0].status == 200  # what ComfyUI itself answered
    assert "7" in refused.value.node_errors
    assert "node 7 (SaveImage)" in str(refused.value)


async def test_a_400_is_a_refusal_naming_the_node() -> None:
    graph = _graph("flux_txt2img.json")
    graph["8"]["inputs"]["denoise"] = 1.5
    async with comfy_client() as (client, _):
        with pytest.raises(ComfyUIRefusedError) as refused:
            await client.queue_prompt(graph, "p-bad")
    assert "node 8 (KSampler)" in str(refused.value)


async def test_messages_reach_the_subscriber_of_their_prompt_only() -> None:
    async with comfy_client() as (client, _):
        mine = client.subscribe("p-mine")
        other = client.subscribe("p-other")
        await client.queue_prompt(await _model_free_graph(), "p-mine")
        kinds = []
        while True:
            event = await mine.next(5.0)
            if isinstance(event, QueueSnapshot):
                continue  # the shared /queue read after a status message
            assert isinstance(event, WsMessage)
            assert event.data["prompt_id"] == "p-mine"
            kinds.append(event.type)
            if event.type == "executing" and event.data["node"] is None:
                break
        entry = await client.history("p-mine")
        leftovers = []
        while (event := await other.next(0)) is not None:
            leftovers.append(event)
    assert kinds[0] == "execution_start" and "execution_success" in kinds
    assert entry is not None and entry["status"]["status_str"] == "success"
    assert leftovers == []  # not even the status messages: they name no prompt


async def test_the_socket_reconnects_and_tells_the_waiting_renders() -> None:
    async with comfy_client() as (client, comfy):
        subscription = client.subscribe("p-wait")
        before = client.reconnects
        comfy.fake.abort_websockets()
        states: list[bool] = []
        while len(states) < 2:
            event = await subscription.next(5.0)
            if isinstance(event, SocketState):
                states.append(event.connected)
        assert states == [False, True]
        assert client.reconnects == before + 1


async def test_an_unreachable_backend_is_unavailable_after_retries() -> None:
    async with comfy_client() as (client, comfy):
        await comfy.stop()
        with pytest.raises(ComfyUIUnavailableError):
            await client.queue_snapshot()


async def test_queue_snapshot_gives_positions_behind_the_running_prompt() -> None:
    async with comfy_client() as (client, comfy):
        comfy.fake.faults.queue_delay_s = 5.0  # the worker holds off: everything pends
        graph = await _model_free_graph()
        for i, prompt_id in enumerate(["a", "b", "c"]):
            graph["2"]["inputs"]["width"] = 100 + i
            await client.queue_prompt(graph, prompt_id)
        snapshot = await client.queue_snapshot()
        comfy.fake.faults.queue_delay_s = 0.0
    assert [snapshot.position(p) for p in ("a", "b", "c")] == [0, 1, 2]


def test_a_type_4_preview_names_its_prompt() -> None:
    meta = json.dumps({"prompt_id": "p-1", "image_type": "image/jpeg"}).encode()
    frame = struct.pack(">II", 4, len(meta)) + meta + b"\xff\xd8jpeg"
    preview = decode_preview_frame(frame)
    assert preview is not None
    assert (preview.prompt_id, preview.image, preview.mime_type) == (
        "p-1",
        b"\xff\xd8jpeg",
        "image/jpeg",
    )


def test_a_type_1_preview_has_no_prompt_and_a_format() -> None:
    preview = decode_preview_frame(struct.pack(">II", 1, 2) + b"\x89PNG")
    assert preview is not None
    assert (preview.prompt_id, preview.mime_type) == (None, "image/png")


def test_text_frames_are_not_previews() -> None:
    assert decode_preview_frame(struct.pack(">II", 3, 1) + b"9width: 8") is None


async def test_a_status_message_sends_one_queue_snapshot_to_waiting_prompts_only() -> None:
    async with comfy_client() as (client, comfy):
        comfy.fake.faults.queue_delay_s = 5.0  # the worker holds off: everything pends
        waiting = client.subscribe("w")
        running = client.subscribe("r")
        running.waiting = False  # as the follower marks a prompt that started
        graph = await _model_free_graph()
        for i, prompt_id in enumerate(["w", "r"]):
            graph["2"]["inputs"]["width"] = 100 + i
            await client.queue_prompt(graph, prompt_id)
        event = await waiting.next(5.0)
        nothing = await running.next(0.3)
        comfy.fake.faults.queue_delay_s = 0.0
    assert isinstance(event, QueueSnapshot) and event.position("w") == 0
    assert nothing is None
