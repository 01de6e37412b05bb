"""ComfyUI behind the backend protocol, against the stand-in: what the renderer relies on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from services.render.backend import (
    FollowPacing,
    PromptEvent,
    PromptFinished,
    PromptProgress,
    PromptQueued,
    PromptRefusedError,
    PromptStarted,
    VariantSpec,
    VariantValues,
)
from services.render.comfyui import ComfyUIBackend, ComfyUIClient
from services.render.settings import DEFAULT_WORKFLOWS_DIR
from services.render.workflows import WorkflowLibrary
from standins.comfyui.server import RunningFakeComfyUI, run_fake_comfyui
from tests.render.conftest import fake_settings, image_size

LIBRARY = WorkflowLibrary(DEFAULT_WORKFLOWS_DIR)
PACING = FollowPacing(queue_poll_s=0.2, history_poll_s=0.5)


def _txt2img(steps: int = 4, seed: int = 1, denoise: float = 1.0) -> VariantSpec:
    values = VariantValues(
        positive="a lighthouse at dusk",
        negative="",
        seed=seed,
        steps=steps,
        cfg=1.0,
        guidance=3.5,
        sampler="euler",
        scheduler="simple",
        denoise=denoise,
        width=256,
        height=192,
    )
    return VariantSpec(LIBRARY.get("flux-txt2img"), values)


@asynccontextmanager
async def comfy_backend(
    step_delay_s: float = 0.005,
) -> AsyncIterator[tuple[ComfyUIBackend, RunningFakeComfyUI]]:
    async with run_fake_comfyui(fake_settings(step_delay_s=step_delay_s), port=0) as running:
        backend = ComfyUIBackend(ComfyUIClient(running.url, client_id=f"t-{uuid.uuid4().hex}"))
        backend.start()
        try:
            yield backend, running
        finally:
            await backend.aclose()


async def _events(backend: ComfyUIBackend, spec: VariantSpec, prompt_id: str) -> list[PromptEvent]:
    return [
        event
        async for event in backend.follow(
            spec, prompt_id, labels={"variant": 0}, deadline=None, pacing=PACING
        )
    ]


async def test_a_variant_is_followed_to_its_result_and_fetched() -> None:
    async with comfy_backend() as (backend, comfy):
        assert await backend.problems(_txt2img()) == []
        events = await _events(backend, _txt2img(), str(uuid.uuid4()))
        finished = events[-1]
        assert isinstance(finished, PromptFinished)
        image = await backend.fetch(finished.result)
        submitted = comfy.fake.submitted[0].body
    assert events[:2] == [PromptQueued(0), PromptStarted()]
    assert [e.step for e in events if isinstance(e, PromptProgress)] == [1, 2, 3, 4]
    assert image_size(image) == (256, 192)
    assert finished.recipe == submitted["prompt"]
    assert submitted["extra_data"]["imagegen"] == {"variant": 0, **backend.instance.tags()}


async def test_a_refusal_names_the_request_field() -> None:
    async with comfy_backend() as (backend, _):
        with pytest.raises(PromptRefusedError) as refused:
            await _events(backend, _txt2img(denoise=1.5), str(uuid.uuid4()))
    assert "settings.denoise" in [p.field for p in refused.value.problems]
    assert refused.value.reason == "COMFYUI_REFUSED_PROMPT"


async def test_withdrawing_a_running_and_a_pending_prompt_leaves_none() -> None:
    async with comfy_backend(step_delay_s=0.05) as (backend, comfy):
        ids = [str(uuid.uuid4()) for _ in range(2)]
        followers = [
            asyncio.create_task(_events(backend, _txt2img(steps=100, seed=i), prompt_id))
            for i, prompt_id in enumerate(ids)
        ]
        for _ in range(500):
            if len(comfy.fake.queued_ids) + len(comfy.fake.running_ids) == 2:
                break
            await asyncio.sleep(0.01)
        remaining = list(ids)
        for _ in range(20):
            remaining = list(await backend.withdraw(remaining))
            if not remaining:
                break
            await asyncio.sleep(0.05)
        results = await asyncio.gather(*followers, return_exceptions=True)
    assert remaining == []
    assert comfy.fake.counters.prompts_succeeded == 0
    # The interrupted prompt's follower hears how it ended; the deleted one is lost.
    assert all(isinstance(r, Exception) for r in results)
