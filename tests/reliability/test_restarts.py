"""A process stopped and started again while a request is in flight.

The request in flight ends with the promised outcome (a retry that succeeds, or a clear
UNAVAILABLE naming what went away); once the process is back, requests succeed again;
and nothing is left queued or running on the ComfyUI stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2
from services.common.server import GrpcServer
from services.planner.app import create_server as create_planner
from services.planner.settings import PlannerSettings
from services.render.app import create_server as create_render
from services.render.app import renderer_config
from services.render.backends import BackendPool
from services.render.comfyui import ComfyUIBackend, ComfyUIClient
from services.render.renderer import Renderer, RenderEvent, VariantProgress
from services.render.service import job_from_proto
from services.render.settings import RenderSettings
from services.render.workflows import WorkflowLibrary
from services.vision.app import create_server as create_vision
from services.vision.settings import VisionSettings
from standins.comfyui.server import run_fake_comfyui
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.system import System, start_system, stop_host
from tests.reliability.inputs import img2img, png_bytes
from tests.reliability.invariants import RpcLedger, eventually, settle
from tests.reliability.outcomes import (
    Expected,
    Outcome,
    assert_outcome,
    collect,
    generate,
    until_event,
)
from tests.reliability.tuning import PLANNER_MODEL, VISION_MODEL

_BACK_WITHIN_S = 15.0
"""Bound on how long requests may keep failing after a process is back."""

StageReached = Callable[[System, Any, Outcome], Awaitable[None]]
"""Returns once the request (a ``Generate`` call) is in the stage a cell restarts at."""


def _same_service(system: System, name: str, port: int) -> Awaitable[GrpcServer]:
    """The same service ``start_system`` made, on the same port."""
    if name == "vision":
        return create_vision(
            VisionSettings(port=port, ollama_url=system.ollama.url, readiness_interval_s=0.2)
        )
    if name == "planner":
        return create_planner(
            PlannerSettings(port=port, ollama_url=system.ollama.url, readiness_interval_s=0.2)
        )
    return create_render(
        RenderSettings(port=port, comfyui_urls=system.comfyui.url, readiness_interval_s=0.2)
    )


def _restart_service(name: str) -> Callable[[System, AsyncExitStack], Awaitable[None]]:
    async def restart(system: System, stack: AsyncExitStack) -> None:
        port = int(system.addresses[name].rsplit(":", 1)[1])
        await stop_host(system.hosts[name])
        host = await _same_service(system, name, port)
        await host.start()
        stack.push_async_callback(stop_host, host)
        system.hosts[name] = host

    return restart


async def _restart_ollama(system: System, stack: AsyncExitStack) -> None:
    await system.ollama.restart()


async def _restart_comfyui(system: System, stack: AsyncExitStack) -> None:
    await system.comfyui.restart()


def _model_asked(prefix: str) -> StageReached:
    async def reached(system: System, call: object, outcome: Outcome) -> None:
        await eventually(
            lambda: system.ollama_chats(prefix) >= 1,
            timeout_s=5,
            what=f"the {prefix} model was asked",
        )

    return reached


async def _sampling(system: System, call: object, outcome: Outcome) -> None:
    assert await until_event(call, outcome, lambda e: e.HasField("progress"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Restart:
    """A process restarted at one stage of a request.

    Attributes:
        id: Names the cell.
        slow_model: Ollama model kept busy for a second, so the stage lasts ("" = none).
        reached: Returns once the request is in the stage.
        restart: Stops the process and starts it again.
        expected: The in-flight request's outcome.
    """

    id: str
    slow_model: str
    reached: StageReached
    restart: Callable[[System, AsyncExitStack], Awaitable[None]]
    expected: Expected


def _unavailable(message: str) -> Expected:
    return Expected(code=grpc.StatusCode.UNAVAILABLE, reason="BACKEND_UNAVAILABLE", message=message)


RESTARTS = [
    Restart(
        "ollama-restarted-during-plan",
        PLANNER_MODEL,
        _model_asked(PLANNER_MODEL),
        _restart_ollama,
        Expected(results=2, no_fallback=True),
    ),
    Restart(
        "vision-service-restarted-during-analysis",
        VISION_MODEL,
        _model_asked(VISION_MODEL),
        # The gateway's channel retries the unary call once the restarted service is
        # back (UNAVAILABLE retry policy, short reconnect backoff).
        _restart_service("vision"),
        Expected(results=2),
    ),
    Restart(
        "planner-service-restarted-during-plan",
        PLANNER_MODEL,
        _model_asked(PLANNER_MODEL),
        # The gateway's channel retries the unary call once the restarted service is
        # back (UNAVAILABLE retry policy, short reconnect backoff).
        _restart_service("planner"),
        Expected(results=2),
    ),
    Restart(
        "render-service-restarted-during-sampling",
        "",
        _sampling,
        _restart_service("render"),
        _unavailable("render service"),
    ),
    Restart(
        "comfyui-restarted-during-sampling",
        "",
        _sampling,
        _restart_comfyui,
        _unavailable("lost prompt"),
    ),
]


async def _succeeds_again(system: System) -> Outcome:
    """Sends requests until one succeeds, for at most ``_BACK_WITHIN_S``."""
    last = Outcome()

    async def one_succeeds() -> bool:
        nonlocal last
        last = await generate(system.stub, img2img(index=7), deadline_s=10)
        return bool(last.code == grpc.StatusCode.OK)

    await eventually(one_succeeds, timeout_s=_BACK_WITHIN_S, what="a request succeeded")
    return last


@pytest.mark.parametrize("cell", RESTARTS, ids=lambda cell: cell.id)
async def test_restart_mid_request_ends_as_promised_and_service_recovers(
    cell: Restart, exit_stack: AsyncExitStack
) -> None:
    system = await start_system(
        exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.05), plan_reuse_window_s=0.0
    )
    if cell.slow_model:
        system.ollama.fake.faults.add(kind="delay", delay_s=1.0, model=cell.slow_model, times=1)
    ledger = RpcLedger.open()
    call = system.stub.Generate(img2img(variants=2, steps=10), timeout=20)
    outcome = Outcome()
    await cell.reached(system, call, outcome)
    await cell.restart(system, exit_stack)
    await collect(call, outcome)
    assert_outcome(outcome, cell.expected)
    await settle(system.comfyui, ledger)
    assert (await _succeeds_again(system)).results


async def _consume(events: AsyncIterator[RenderEvent], progressed: asyncio.Event) -> None:
    async for event in events:
        if isinstance(event, VariantProgress):
            progressed.set()


async def test_render_service_stop_withdraws_the_prompts_of_cancelled_renders(
    exit_stack: AsyncExitStack,
) -> None:
    comfyui = await exit_stack.enter_async_context(
        run_fake_comfyui(FakeComfyUISettings(step_delay_s=0.05), port=0)
    )
    settings = RenderSettings(port=0, comfyui_urls=comfyui.url)
    client = ComfyUIClient(comfyui.url, client_id="imagegen-render-stop-test")
    pool = BackendPool([ComfyUIBackend(client)])
    pool.start()
    renderer = Renderer(pool, WorkflowLibrary(settings.workflows_path), renderer_config(settings))
    job = job_from_proto(
        render_pb2.RenderRequest(
            source_image=common_pb2.Image(data=png_bytes()),
            positive_prompt="warm beige walls",
            settings=common_pb2.SamplerSettings(steps=10),
            seed=1,
            variants=2,
        )
    )
    progressed = asyncio.Event()
    render = asyncio.create_task(_consume(renderer.render(job, deadline=None), progressed))
    await progressed.wait()
    # What GrpcServer.stop(0) does: the server cancels the streaming handler, then runs
    # the cleanups registered with on_stop (the render service registers aclose).
    render.cancel()
    await renderer.aclose()
    with contextlib.suppress(asyncio.CancelledError):
        await render
    await comfyui.fake.wait_until_idle(timeout_s=10)
    assert comfyui.fake.counters.prompts_succeeded == 0
