"""A finished prompt's history entry is deleted beside its result, not before it.

The deletion is held at a gate here, so each test shows an order of events, not a speed:
the result goes out while the deletion is still running, the request ends only after
it, and a caller that leaves in between does not leave the entry behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import cast

from services.render.app import renderer_config
from services.render.backends import BackendPool
from services.render.comfyui import ComfyUIBackend, ComfyUIClient
from services.render.renderer import Renderer, RenderEvent, VariantDone
from services.render.service import job_from_proto
from services.render.settings import RenderSettings
from services.render.workflows import WorkflowLibrary
from standins.comfyui.server import RunningFakeComfyUI, run_fake_comfyui
from tests.reliability.invariants import eventually
from tests.render.conftest import fake_settings, img2img_request


class _GatedForgetClient(ComfyUIClient):
    """A ComfyUI client whose history deletions wait until :attr:`gate` is set."""

    def __init__(self, url: str) -> None:
        super().__init__(url, client_id="imagegen-render-history-test")
        self.gate = asyncio.Event()
        self.asked = asyncio.Event()

    async def forget(self, prompt_ids: Sequence[str]) -> None:
        self.asked.set()
        await self.gate.wait()
        await super().forget(prompt_ids)


@contextlib.asynccontextmanager
async def _renderer() -> AsyncIterator[tuple[Renderer, _GatedForgetClient, RunningFakeComfyUI]]:
    async with run_fake_comfyui(fake_settings(step_delay_s=0.0), port=0) as comfy:
        settings = RenderSettings(port=0, comfyui_urls=comfy.url)
        client = _GatedForgetClient(comfy.url)
        pool = BackendPool([ComfyUIBackend(client)])
        pool.start()
        renderer = Renderer(
            pool, WorkflowLibrary(settings.workflows_path), renderer_config(settings)
        )
        try:
            yield renderer, client, comfy
        finally:
            client.gate.set()
            await renderer.aclose()


def _render(renderer: Renderer, *, seed: int) -> AsyncGenerator[RenderEvent, None]:
    """A one-variant render's events (``Renderer.render`` is an async generator)."""
    events = renderer.render(job_from_proto(img2img_request(seed=seed)), deadline=None)
    return cast(AsyncGenerator[RenderEvent, None], events)


async def _result(events: AsyncGenerator[RenderEvent, None]) -> VariantDone:
    """Reads ``events`` up to the variant's result."""
    while not isinstance(event := await anext(events), VariantDone):
        pass
    return event


async def _leave_after_result(
    renderer: Renderer, client: _GatedForgetClient, *, seed: int
) -> VariantDone:
    """A caller that reads its result and goes away (closes its stream) once the history
    entry's deletion has been asked for (and is still held)."""
    events = _render(renderer, seed=seed)
    async with contextlib.aclosing(events):
        result = await _result(events)
        await client.asked.wait()
    return result


async def test_the_result_goes_out_before_the_history_entry_is_deleted_the_request_after() -> None:
    async with _renderer() as (renderer, client, comfy):
        events = _render(renderer, seed=4)
        async with contextlib.aclosing(events):
            result = await _result(events)
            assert client.asked.is_set() and not client.gate.is_set()
            assert result.prompt_id in comfy.fake.history
            end = asyncio.ensure_future(anext(events, None))
            await asyncio.sleep(0.05)
            assert not end.done()  # the request waits for the deletion
            client.gate.set()
            assert await end is None
        assert result.prompt_id not in comfy.fake.history


async def test_a_caller_leaving_after_its_result_does_not_leave_the_history_entry() -> None:
    async with _renderer() as (renderer, client, comfy):
        result = await _leave_after_result(renderer, client, seed=5)
        assert result.prompt_id in comfy.fake.history
        client.gate.set()
        await eventually(
            lambda: result.prompt_id not in comfy.fake.history,
            timeout_s=5,
            what="the history entry deleted after its caller left",
        )


async def test_a_stopping_server_finishes_the_deletions_it_started() -> None:
    async with _renderer() as (renderer, client, comfy):
        result = await _leave_after_result(renderer, client, seed=6)
        closing = asyncio.ensure_future(renderer.aclose())
        await asyncio.sleep(0)
        client.gate.set()
        await closing
        assert result.prompt_id not in comfy.fake.history
