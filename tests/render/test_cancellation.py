"""Cancel and deadline: nothing of the request is left queued or running on ComfyUI."""

from __future__ import annotations

import grpc
import grpc.aio

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
