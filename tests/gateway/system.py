"""The whole system in-process: both stand-ins, the three services and a gateway.

Every server listens on port 0 on 127.0.0.1 and is reached through real gRPC channels.
Used by the gateway tests (through ``conftest.py``) and by the benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.app import create_server as create_gateway
from gateway.settings import GatewaySettings
from imagegen.gateway.v1 import gateway_pb2_grpc
from services.common.server import GrpcServer
from services.planner.app import create_server as create_planner
from services.planner.settings import PlannerSettings
from services.render.app import create_server as create_render
from services.render.settings import RenderSettings
from services.vision.app import create_server as create_vision
from services.vision.settings import VisionSettings
from standins.comfyui.server import RunningFakeComfyUI, run_fake_comfyui
from standins.comfyui.settings import FakeComfyUISettings
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

__all__ = [
    "ANALYSIS_ANSWER",
    "PLAN_ANSWER",
    "RunningGateway",
    "System",
    "start_gateway_in",
    "start_system",
    "stop_host",
]

ANALYSIS_ANSWER: dict[str, Any] = {
    "description": "A white porcelain cup on a saucer on a wooden table.",
    "subjects": ["cup", "saucer", "table"],
    "colors": ["white", "brown"],
    "materials": ["porcelain", "wood"],
    "style": "photograph",
    "lighting": "soft daylight",
    "composition": "close-up, cup centred",
}
"""What the stand-in's llava answers in system tests (unless the settings script it)."""

PLAN_ANSWER: dict[str, Any] = {
    "intent": "color_change",
    "positive_prompt": "A dark green porcelain cup on a white saucer on a wooden table, photograph",
    "negative_prompt": "white cup, blurry, low quality",
    "denoise": 0.85,
    "steps": 28,
    "guidance": 3.5,
}
"""What the stand-in's gpt-oss answers in system tests (unless the settings script it)."""


async def stop_host(host: GrpcServer) -> None:
    """Stops a server at once, first making sure its readiness watchers have ended.

    On Python 3.11 ``asyncio.wait_for`` returns the result instead of raising when the
    awaited check finishes in the same loop step as the cancellation (fixed in 3.12), so
    the single ``cancel()`` of ``GrpcServer.stop`` can be lost and the stop then waits for
    the watcher forever. Cancelling until the watcher is really done avoids that.
    """
    for watcher in list(host._watchers):
        while not watcher.done():
            watcher.cancel()
            await asyncio.wait({watcher}, timeout=0.5)
    await host.stop(0)


@dataclass
class RunningGateway:
    """A started gateway and a stub on a channel to it."""

    host: GrpcServer
    address: str
    stub: Any


@dataclass
class System:
    """Everything a gateway test talks to or inspects."""

    ollama: RunningFakeOllama
    comfyui: RunningFakeComfyUI
    addresses: dict[str, str]
    gateway: RunningGateway
    hosts: dict[str, GrpcServer] = field(default_factory=dict)

    @property
    def stub(self) -> Any:
        """The default gateway's stub."""
        return self.gateway.stub

    def ollama_chats(self, model_prefix: str) -> int:
        """Chat calls the Ollama stand-in received for models starting with the prefix."""
        return sum(
            1
            for r in self.ollama.fake.requests_to("/api/chat")
            if (r.model or "").startswith(model_prefix)
            and isinstance(r.body, dict)
            and r.body.get("messages")
        )


async def start_system(
    stack: AsyncExitStack,
    *,
    ollama: FakeOllamaSettings | None = None,
    comfyui: FakeComfyUISettings | None = None,
    readiness_interval_s: float = 1.0,
    **gateway_settings: Any,
) -> System:
    """Starts the stand-ins, the services and a gateway, closed by ``stack``.

    The services probe their backends every ``readiness_interval_s``, each probe allowed
    as long: shorter would call a backend down whenever the machine is busy (everything
    here shares one event loop). The gateway polls the services every 0.2 s unless
    ``health_poll_interval_s`` says otherwise.
    """
    ollama = ollama or FakeOllamaSettings()
    fake_ollama = await stack.enter_async_context(run_fake_ollama(ollama, port=0))
    if not ollama.answers:
        fake_ollama.fake.script.always(ANALYSIS_ANSWER, model="llava")
        fake_ollama.fake.script.always(PLAN_ANSWER, model="gpt-oss:20b")
    fake_comfyui = await stack.enter_async_context(
        run_fake_comfyui(comfyui or FakeComfyUISettings(step_delay_s=0.0), port=0)
    )
    hosts: dict[str, GrpcServer] = {
        "vision": await create_vision(
            VisionSettings(
                port=0, ollama_url=fake_ollama.url, readiness_interval_s=readiness_interval_s
            )
        ),
        "planner": await create_planner(
            PlannerSettings(
                port=0, ollama_url=fake_ollama.url, readiness_interval_s=readiness_interval_s
            )
        ),
        "render": await create_render(
            RenderSettings(
                port=0, comfyui_urls=fake_comfyui.url, readiness_interval_s=readiness_interval_s
            )
        ),
    }
    addresses: dict[str, str] = {}
    for name, host in hosts.items():
        addresses[name] = f"127.0.0.1:{await host.start()}"
        stack.push_async_callback(stop_host, host)
    await _until_probed(hosts.values())
    system = System(fake_ollama, fake_comfyui, addresses, gateway=None, hosts=hosts)  # type: ignore[arg-type]
    system.gateway = await start_gateway_in(stack, system, **gateway_settings)
    await _until_serving(system.gateway.address)
    return system


async def _until_probed(hosts: Iterable[GrpcServer], *, within_s: float = 10.0) -> None:
    """Waits (bounded) until each service's first readiness probe has answered, whatever
    it answered, as a deployment starts the gateway once its services report a state.

    The gateway's own first health check then sees that state, instead of the
    NOT_SERVING every service starts with, and need not wait a poll interval to see it
    change.
    """
    # The server keeps its readiness as a plain value (no event to wait on).
    async with asyncio.timeout(within_s):
        while any(host.ready is None for host in hosts):  # noqa: ASYNC110
            await asyncio.sleep(0.002)


async def _until_serving(address: str, *, within_s: float = 10.0) -> None:
    """Waits (bounded) until the gateway reports SERVING, as a deployment's readiness
    probe would before sending traffic; a system that never gets there is returned as it
    is, for the tests that look at exactly that."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with contextlib.suppress(TimeoutError, grpc.aio.AioRpcError):
            async with asyncio.timeout(within_s):
                async for answer in stub.Watch(health_pb2.HealthCheckRequest()):
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return


async def start_gateway_in(
    stack: AsyncExitStack, system: System, **settings: Any
) -> RunningGateway:
    """Starts a gateway in front of ``system``'s services, stopped by ``stack``."""
    values: dict[str, Any] = {
        "port": 0,
        "vision_address": system.addresses["vision"],
        "planner_address": system.addresses["planner"],
        "render_address": system.addresses["render"],
        "health_poll_interval_s": 0.2,
    }
    if "jobs_dir" not in settings:
        # A job store of its own: gateways of parallel tests never share one file.
        jobs_dir = tempfile.mkdtemp(prefix="imagegen-jobs-")
        stack.callback(shutil.rmtree, jobs_dir, True)
        values["jobs_dir"] = jobs_dir
    host = await create_gateway(GatewaySettings(**(values | settings)))
    port = await host.start()
    stack.push_async_callback(stop_host, host)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stack.push_async_callback(channel.close)
    return RunningGateway(
        host=host,
        address=f"127.0.0.1:{port}",
        stub=gateway_pb2_grpc.GatewayServiceStub(channel),  # type: ignore[no-untyped-call]
    )
