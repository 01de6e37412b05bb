"""The render service against the stand-in paced like a real GPU server: a delay per
sampling step and per node, previews on; each test against ComfyUI 0.3.64 and against a
newer ComfyUI (UUID prompt ids enforced, per-job cancel). Each test names the defect seen
on a real ComfyUI that it guards against."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from prometheus_client import REGISTRY

from imagegen.render.v1 import render_pb2
from services.common.errors import status_details
from standins.comfyui.settings import FakeComfyUISettings
from tests.reliability.invariants import eventually
from tests.render.conftest import (
    RenderStack,
    collect,
    fake_settings,
    img2img_request,
    of_kind,
    render_stack,
)

STEPS = 4


@pytest.fixture(params=["0.3.64", "0.27.0"])
def version(request: pytest.FixtureRequest) -> str:
    """The ComfyUI the stand-in plays: 0.3.64, or a newer one with the jobs API."""
    return str(request.param)


def gpu_paced(version: str, **overrides: Any) -> FakeComfyUISettings:
    """Stand-in settings of a GPU server: 50 ms per step and per node, previews on."""
    values: dict[str, Any] = {
        "comfyui_version": version,
        "step_delay_s": 0.05,
        "node_delay_s": 0.05,
        "previews_enabled": True,
        **overrides,
    }
    return fake_settings(**values)


def output_files(root: str) -> list[str]:
    """Every file under a stand-in's output/ folder."""
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


async def refusal(stack: RenderStack, request: render_pb2.RenderRequest) -> grpc.aio.AioRpcError:
    """The error a render call ends with (it must end with one)."""
    try:
        await collect(stack.stub, request)
    except grpc.aio.AioRpcError as e:
        return e
    raise AssertionError("the render should be refused")


async def test_previews_are_labelled_with_the_step_they_show(version: str) -> None:
    async with render_stack(comfy=gpu_paced(version), preview_max_per_second=30.0) as stack:
        events = await collect(stack.stub, img2img_request(previews=True, seed=1))
    previews = [p.step for p in of_kind(events, "preview")]
    assert previews == list(range(1, STEPS + 1))
    steps = [
        (kind, getattr(e, kind).step)
        for e in events
        if (kind := e.WhichOneof("event")) in ("progress", "preview")
    ]
    for step in previews:  # each preview follows the progress of its own step
        assert steps.index(("progress", step)) < steps.index(("preview", step))


async def test_every_variant_is_reported_queued_even_when_it_runs_at_once(version: str) -> None:
    async with render_stack(comfy=gpu_paced(version)) as stack:
        events = await collect(stack.stub, img2img_request(variants=3, seed=1))
    queued = of_kind(events, "queued")
    assert {q.variant for q in queued} == {0, 1, 2}
    first: dict[int, int] = {}
    for q in queued:
        first.setdefault(q.variant, q.position)
    assert 0 in first.values()  # the one that ran at once


async def test_previews_asked_of_a_server_that_sends_none_warn_once(version: str) -> None:
    async with render_stack(comfy=gpu_paced(version, previews_enabled=False)) as stack:
        events = await collect(stack.stub, img2img_request(variants=2, previews=True, seed=1))
    warnings = [w.code for w in of_kind(events, "warning")]
    assert warnings.count("PREVIEWS_UNAVAILABLE") == 1
    assert len(of_kind(events, "result")) == 2


async def test_no_previews_warning_when_none_were_asked_for(version: str) -> None:
    async with render_stack(comfy=gpu_paced(version, previews_enabled=False)) as stack:
        quiet = await collect(stack.stub, img2img_request(seed=1))
    assert "PREVIEWS_UNAVAILABLE" not in [w.code for w in of_kind(quiet, "warning")]


async def test_a_checkpoint_removed_at_run_time_is_model_not_found_naming_what_is_there(
    version: str,
) -> None:
    async with render_stack(comfy=gpu_paced(version)) as stack:
        await collect(stack.stub, img2img_request(seed=1))  # the lists are read and kept
        fake = stack.comfy.fake
        fake.set_model_files(checkpoints=["flux1-schnell.safetensors"])
        error = await refusal(stack, img2img_request(seed=2))
        refused = [s for s in fake.submitted if s.status == 400]
    assert refused, "the stale list let the prompt reach ComfyUI, which refused it"
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = status_details(error)
    info = next(d for d in details if isinstance(d, error_details_pb2.ErrorInfo))
    assert info.reason == "MODEL_NOT_FOUND"
    failure = next(d for d in details if isinstance(d, error_details_pb2.PreconditionFailure))
    assert [v.subject for v in failure.violations] == ["flux1-dev-fp8.safetensors"]
    assert "flux1-schnell.safetensors" in failure.violations[0].description


async def test_model_lists_are_read_again_after_the_refresh_interval(version: str) -> None:
    async with render_stack(comfy=gpu_paced(version), catalog_refresh_s=0.01) as stack:
        await collect(stack.stub, img2img_request(seed=1))
        fake = stack.comfy.fake
        fake.set_model_files(checkpoints=["flux1-schnell.safetensors"])
        error = await refusal(stack, img2img_request(seed=2))
        # Refused before anything was uploaded or queued: the source is not left behind.
        assert [s for s in fake.submitted if s.status == 400] == []
        assert fake.counters.uploads == 1
    info = next(d for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo))
    assert info.reason == "MODEL_NOT_FOUND"


async def test_twenty_requests_leave_no_history_and_no_output_file(version: str) -> None:
    comfy = gpu_paced(version, step_delay_s=0.01, node_delay_s=0.01)  # 20 requests: a faster GPU
    async with render_stack(comfy=comfy) as stack:
        fake = stack.comfy.fake
        for seed in range(20):
            events = await collect(stack.stub, img2img_request(seed=seed))
            assert len(of_kind(events, "result")) == 1
        ours = {s.prompt_id for s in fake.submitted}
        assert len(ours) == 20
        assert ours.isdisjoint(fake.history)
        assert output_files(fake.output_dir) == []
        assert not any(path.startswith("/view") for _, path, _ in fake.request_log)
        graphs = [s.body["prompt"] for s in fake.submitted]
    assert all(
        "SaveImageWebsocket" in {n["class_type"] for n in g.values()}
        and "SaveImage" not in {n["class_type"] for n in g.values()}
        for g in graphs
    )


async def test_without_save_image_websocket_the_result_is_saved_fetched_and_forgotten(
    version: str,
) -> None:
    async with render_stack(
        comfy=gpu_paced(version, unavailable_nodes=["SaveImageWebsocket"])
    ) as stack:
        fake = stack.comfy.fake
        events = await collect(stack.stub, img2img_request(seed=1))
        assert len(of_kind(events, "result")) == 1
        assert len(output_files(fake.output_dir)) == 1
        assert any(path.startswith("/view") for _, path, _ in fake.request_log)
        assert {s.prompt_id for s in fake.submitted}.isdisjoint(fake.history)


def awaiting_withdrawal(url: str) -> float | None:
    """The exported count of a backend's prompts awaiting withdrawal."""
    return REGISTRY.get_sample_value(
        "imagegen_render_prompts_awaiting_withdrawal", {"backend": url}
    )


async def cancel_once_running(stack: RenderStack, request: render_pb2.RenderRequest) -> str:
    """Starts a render, cancels it as soon as its prompt runs, returns the prompt id."""
    call = stack.stub.Render(request, timeout=30)
    async for event in call:
        if event.WhichOneof("event") == "queued" and stack.comfy.fake.running_ids:
            break
    running = stack.comfy.fake.running_ids[0]
    call.cancel()
    return running


async def test_a_cancel_mid_node_is_watched_until_comfyui_lets_go_without_error(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A node of 1.2 s: the interrupt waits for it to end (gave up after ~1.6 s before).
    comfy = gpu_paced(version, node_delay_s=1.2)
    async with render_stack(comfy=comfy, withdrawal_bound_s=5.0) as stack:
        fake = stack.comfy.fake
        prompt_id = await cancel_once_running(stack, img2img_request(seed=1))
        url = stack.comfy.url
        await eventually(lambda: awaiting_withdrawal(url) == 1, timeout_s=0.5, what="watched")
        started = time.monotonic()
        await eventually(lambda: awaiting_withdrawal(url) == 0, timeout_s=5.0, what="gone")
        gone_after = time.monotonic() - started
        assert fake.running_ids == [] and fake.queued_ids == []
        assert fake.counters.prompts_interrupted == 1
        assert fake.interrupt_requests == [prompt_id]  # ours, once
        paths = [path for _, path, _ in fake.request_log]
        if version == "0.3.64":  # a targeted /interrupt, the running prompt read first
            assert "/interrupt" in paths and fake.cancel_requests == []
        else:  # the atomic per-job cancel
            assert "/interrupt" not in paths and fake.cancel_requests == [prompt_id]
        assert prompt_id not in fake.history  # the interrupted entry is deleted too
    assert gone_after > 0.3  # it really outlived the call's own cleanup
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_prompt_held_past_the_bound_is_logged_as_an_error(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    comfy = gpu_paced(version, node_delay_s=1.5)
    async with render_stack(comfy=comfy, withdrawal_bound_s=0.3) as stack:
        prompt_id = await cancel_once_running(stack, img2img_request(seed=1))
        await eventually(
            lambda: any(r.levelno >= logging.ERROR for r in caplog.records),
            timeout_s=3.0,
            what="an error once the bound passed",
        )
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "prompt still on the backend after the withdrawal bound; giving up"
    ]
    assert getattr(errors[0], "prompt_id", None) == prompt_id


async def test_pending_variants_are_exported(version: str) -> None:
    async with render_stack(comfy=gpu_paced(version)) as stack:
        before = REGISTRY.get_sample_value("imagegen_render_variants_pending") or 0.0
        call = stack.stub.Render(img2img_request(variants=3, seed=1), timeout=30)
        async for event in call:
            if event.WhichOneof("event") == "queued":
                break
        during = REGISTRY.get_sample_value("imagegen_render_variants_pending")
        rest = [e async for e in call]
        after = REGISTRY.get_sample_value("imagegen_render_variants_pending")
    assert len(of_kind(rest, "result")) == 3
    assert during == before + 3
    assert after == before


async def test_a_render_whose_socket_drops_is_settled_by_the_servers_own_status_route(
    version: str,
) -> None:
    comfy = gpu_paced(version)
    comfy.faults.ws_drop_after_step = 2
    async with render_stack(comfy=comfy) as stack:
        events = await collect(stack.stub, img2img_request(seed=1))
        fake = stack.comfy.fake
        [prompt_id] = [s.prompt_id for s in fake.submitted]
        paths = {path for _, path, _ in fake.request_log}
        assert fake.counters.ws_drops >= 1
        assert prompt_id not in fake.history
    assert len(of_kind(events, "result")) == 1
    jobs, history = f"/api/jobs/{prompt_id}", f"/history/{prompt_id}"
    assert (jobs in paths, history in paths) == (
        (False, True) if version == "0.3.64" else (True, False)
    )
