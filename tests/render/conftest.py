"""Helpers of the render tests: the ComfyUI stand-in, a render server in front of it,
images, and readers of what the stand-in received."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
from PIL import Image

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2, render_pb2_grpc
from services.common.channels import create_channel
from services.common.server import GrpcServer
from services.render.app import create_server
from services.render.settings import RenderSettings
from standins.comfyui.server import RunningFakeComfyUI, run_fake_comfyui
from standins.comfyui.settings import FakeComfyUISettings

OBJECT_INFO_PATH = Path(__file__).parents[2] / "standins" / "comfyui" / "object_info.json"
"""``GET /object_info`` recorded from a real ComfyUI 0.3.64 (the stand-in serves it too)."""


def real_object_info(**models: list[str]) -> dict[str, Any]:
    """The recorded object_info, with model lists replaced (e.g. ``loras=[...]``).

    Args:
        models: ``checkpoints``, ``loras`` and/or ``controlnets`` file lists.
    """
    info: dict[str, Any] = json.loads(OBJECT_INFO_PATH.read_text(encoding="utf-8"))
    where = {
        "checkpoints": [("CheckpointLoaderSimple", "ckpt_name")],
        "loras": [("LoraLoaderModelOnly", "lora_name"), ("LoraLoader", "lora_name")],
        "controlnets": [("ControlNetLoader", "control_net_name")],
    }
    for kind, files in models.items():
        for class_type, input_name in where[kind]:
            spec = info[class_type]["input"]["required"][input_name]
            spec[0] = list(files)
    return info


def png(width: int, height: int, color: tuple[int, int, int] = (180, 120, 60)) -> bytes:
    """A solid PNG (cheap to encode and decode at any size)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of an encoded image."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def fake_settings(**overrides: Any) -> FakeComfyUISettings:
    """Stand-in settings for tests: nearly no step delay."""
    values: dict[str, Any] = {"step_delay_s": 0.001, **overrides}
    return FakeComfyUISettings(**values)


def render_settings(urls: Sequence[str], **overrides: Any) -> RenderSettings:
    """Render settings for tests: port 0, tiny backoffs and polls, no readiness chatter."""
    values: dict[str, Any] = {
        "comfyui_urls": ",".join(urls),
        "port": 0,
        "grace_period_s": 0.0,
        "retry_initial_backoff_s": 0.01,
        "retry_max_backoff_s": 0.02,
        "reconnect_max_s": 0.2,
        "queue_poll_interval_s": 0.2,
        "history_poll_interval_s": 0.5,
        "readiness_interval_s": 3600.0,
        "request_timeout_s": 5.0,
        **overrides,
    }
    return RenderSettings(**values)


@dataclass
class RenderStack:
    """A render server in front of one or more ComfyUI stand-ins."""

    stub: render_pb2_grpc.RenderServiceStub
    channel: grpc.aio.Channel
    host: GrpcServer
    comfys: list[RunningFakeComfyUI]

    @property
    def comfy(self) -> RunningFakeComfyUI:
        """The first (often the only) stand-in."""
        return self.comfys[0]


@asynccontextmanager
async def render_stack(
    *,
    backends: int = 1,
    comfy: FakeComfyUISettings | None = None,
    **render_overrides: Any,
) -> AsyncIterator[RenderStack]:
    """Stand-ins on free ports, a render server on a free port, and a channel to it.

    Args:
        backends: How many stand-ins.
        comfy: Their settings (default :func:`fake_settings`).
        render_overrides: Render settings to change.
    """
    async with AsyncExitStack() as stack:
        comfys = [
            await stack.enter_async_context(run_fake_comfyui(comfy or fake_settings(), port=0))
            for _ in range(backends)
        ]
        settings = render_settings([c.url for c in comfys], **render_overrides)
        host = await create_server(settings)
        port = await host.start()
        stack.push_async_callback(host.stop, 0)
        channel = create_channel(f"127.0.0.1:{port}", max_message_bytes=settings.max_message_bytes)
        stack.push_async_callback(channel.close)
        stub = render_pb2_grpc.RenderServiceStub(channel)  # type: ignore[no-untyped-call]
        yield RenderStack(stub, channel, host, comfys)


def img2img_request(
    source: bytes | None = None, prompt: str = "a red brick house at dusk", **fields: Any
) -> render_pb2.RenderRequest:
    """A small, fast image-to-image request (4 steps)."""
    request = render_pb2.RenderRequest(
        source_image=common_pb2.Image(data=source if source is not None else png(96, 64)),
        positive_prompt=prompt,
        settings=common_pb2.SamplerSettings(steps=4),
        **fields,
    )
    return request


async def collect(
    stub: render_pb2_grpc.RenderServiceStub,
    request: render_pb2.RenderRequest,
    deadline_s: float = 20.0,
) -> list[render_pb2.RenderResponse]:
    """Every event of a render call (made with a ``deadline_s`` gRPC deadline)."""
    return [event async for event in stub.Render(request, timeout=deadline_s)]


def of_kind(events: Sequence[render_pb2.RenderResponse], kind: str) -> list[Any]:
    """The payloads of the events of one kind (``"result"``, ``"warning"``, …), in order."""
    return [getattr(e, kind) for e in events if e.WhichOneof("event") == kind]


def accepted_graphs(comfy: RunningFakeComfyUI) -> list[dict[str, Any]]:
    """Graphs the stand-in accepted (HTTP 200, empty node_errors), oldest first."""
    return [s.body["prompt"] for s in comfy.fake.submitted if s.status == 200]


def graph_of(comfy: RunningFakeComfyUI, prompt_id: str) -> dict[str, Any]:
    """The graph queued under ``prompt_id``."""
    for submitted in comfy.fake.submitted:
        if submitted.prompt_id == prompt_id:
            graph: dict[str, Any] = submitted.body["prompt"]
            return graph
    raise KeyError(prompt_id)


def nodes_of(graph: dict[str, Any], class_type: str) -> list[dict[str, Any]]:
    """The nodes of a class in a graph."""
    return [node for node in graph.values() if node["class_type"] == class_type]
