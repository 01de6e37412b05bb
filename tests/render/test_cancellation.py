"""Cancel and deadline: nothing of the request is left queued or running on ComfyUI."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from typing import Any

import grpc
import grpc.aio

from services.render.app import renderer_config
from services.render.backend import PromptEvent
from services.render.backends import BackendPool
from services.render.comfyui import ComfyUIBackend, ComfyUIClient
from services.render.renderer import Renderer, VariantProgress
from services.render.service import job_from_proto
from services.render.settings import RenderSettings
from services.render.workflows import WorkflowLibrary
from standins.comfyui.server import run_fake_comfyui
from tests.render.conftest import fake_settings, img2img_request, render_stack


async def test_cancel_mid_render_empties_the_queue_and_interrupts_the_running_prompt() -> None:
    comfy = fake_settings(step_delay_s=0.05)
    async with render_stack(comfy=comfy) as stack:
        request = img2img_request(variants=3, seed=1)
        request.settings.steps = 100
        call = stack.stub.Render(request, timeout=30)
        async for event in call:
            if event.WhichOneof("event") == "progress":
                break
        call.cancel()
        fake = stack.comfy.fake
        await fake.wait_until_idle(timeout_s=10)
        running_id = fake.submitted[0].prompt_id if fake.submitted else None
        assert fake.queued_ids == [] and fake.running_ids == []
        assert fake.counters.prompts_interrupted == 1
        assert fake.counters.prompts_succeeded == 0
        assert len(fake.deleted_ids) == 2
        assert running_id is not None
        assert set(fake.interrupt_requests) >= {
            s.prompt_id for s in fake.submitted if s.prompt_id not in fake.deleted_ids
        }
        assert None not in fake.interrupt_requests  # targeted, never a global interrupt


async def test_a_passing_deadline_withdraws_the_prompts() -> None:
    comfy = fake_settings(step_delay_s=0.05)
    async with render_stack(comfy=comfy) as stack:
        request = img2img_request(variants=2, seed=1)
        request.settings.steps = 100
        try:
            [e async for e in stack.stub.Render(request, timeout=1.5)]
            raise AssertionError("the render should time out")
        except grpc.aio.AioRpcError as e:
            code = e.code()
        fake = stack.comfy.fake
        await fake.wait_until_idle(timeout_s=10)
        assert fake.counters.prompts_succeeded == 0
        assert fake.counters.prompts_interrupted == 1
        assert len(fake.deleted_ids) == 1
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_too_little_time_left_is_refused_before_any_gpu_work() -> None:
    async with render_stack(min_time_budget_s=30.0) as stack:
        try:
            [e async for e in stack.stub.Render(img2img_request(), timeout=10)]
            raise AssertionError("the render should be refused")
        except grpc.aio.AioRpcError as e:
            error = e
        fake = stack.comfy.fake
        assert fake.counters.uploads == 0 and fake.counters.prompt_requests == 0
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "needs at least" in (error.details() or "")


async def test_stopping_the_server_withdraws_the_prompts_of_running_renders() -> None:
    comfy = fake_settings(step_delay_s=0.05)
    async with render_stack(comfy=comfy) as stack:
        request = img2img_request(variants=2, seed=4)
        request.settings.steps = 100
        call = stack.stub.Render(request, timeout=30)
        async for event in call:
            if event.WhichOneof("event") == "progress":
                break
        await stack.host.stop(0)
        fake = stack.comfy.fake
        await fake.wait_until_idle(timeout_s=10)
        assert fake.counters.prompts_succeeded == 0
        assert fake.counters.prompts_interrupted == 1
        assert len(fake.deleted_ids) == 1


async def _queue_empty_within(fake: Any, bound_s: float) -> float:
    """Seconds until the stand-in holds no prompt, queued or running (fails past the bound)."""
    started = time.monotonic()
    while fake.queued_ids or fake.running_ids:
        assert time.monotonic() - started < bound_s, (fake.queued_ids, fake.running_ids)
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_wave_of_cancelled_multi_variant_renders_leaves_no_prompt_queued() -> None:
    comfy = fake_settings(step_delay_s=0.05)
    async with render_stack(comfy=comfy) as stack:
        calls = []
        for seed in range(6):
            request = img2img_request(variants=3, seed=seed * 10)
            request.settings.steps = 100
            calls.append(stack.stub.Render(request, timeout=60))
        # Each call has its variants queued before it is cancelled.
        for call in calls:
            async for event in call:
                if event.WhichOneof("event") in ("queued", "progress"):
                    break
        for call in calls:
            call.cancel()
        await _queue_empty_within(stack.comfy.fake, bound_s=5.0)
        assert stack.comfy.fake.counters.prompts_succeeded == 0


class _SwallowsOneCancel:
    """A backend whose event stream swallows the first cancel (as a library might) and
    then waits for a second one."""

    def __init__(self, inner: ComfyUIBackend) -> None:
        self.inner = inner
        self.swallowed = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def name(self) -> str:
        return self.inner.name

    async def follow(self, *args: Any, **kwargs: Any) -> AsyncGenerator[PromptEvent, None]:
        events = self.inner.follow(*args, **kwargs)
        async with contextlib.aclosing(events):
            while True:
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    self.swallowed.set()
                    await asyncio.Event().wait()  # only a second cancel ends this
                    raise
                yield event


async def test_a_swallowed_cancel_does_not_keep_the_prompts_on_the_backend() -> None:
    async with run_fake_comfyui(fake_settings(step_delay_s=0.05), port=0) as comfy:
        settings = RenderSettings(port=0, comfyui_urls=comfy.url)
        backend = _SwallowsOneCancel(
            ComfyUIBackend(ComfyUIClient(comfy.url, client_id="imagegen-render-swallow-test"))
        )
        pool = BackendPool([backend])
        pool.start()
        renderer = Renderer(
            pool, WorkflowLibrary(settings.workflows_path), renderer_config(settings)
        )
        request = img2img_request(variants=3, seed=7)
        request.settings.steps = 100
        progressed = asyncio.Event()

        async def consume() -> None:
            async for event in renderer.render(job_from_proto(request), deadline=None):
                if isinstance(event, VariantProgress):
                    progressed.set()

        render = asyncio.create_task(consume())
        try:
            await progressed.wait()
            render.cancel()
            # Cleanup that waited for the variant tasks before withdrawing would hang here.
            async with asyncio.timeout(10):
                with contextlib.suppress(asyncio.CancelledError):
                    await render
            assert backend.swallowed.is_set()
            await _queue_empty_within(comfy.fake, bound_s=5.0)
            assert comfy.fake.counters.prompts_succeeded == 0
        finally:
            await renderer.aclose()
