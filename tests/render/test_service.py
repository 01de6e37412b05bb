"""RenderService over gRPC: a real server on port 0 in front of the ComfyUI stand-in."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import grpc
import grpc.aio
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2
from services.common.errors import status_details
from services.common.server import READINESS_SERVICE_NAME
from services.render.dimensions import MEGAPIXEL
from services.render.result_metadata import PARAMETERS_KEY, PROVENANCE_KEY, read_text_chunks
from services.render.service import SERVICE_NAME
from standins.comfyui.server import RunningFakeComfyUI
from tests.render.conftest import (
    collect,
    fake_settings,
    graph_of,
    image_size,
    img2img_request,
    nodes_of,
    of_kind,
    png,
    render_stack,
)


async def test_img2img_ignores_requested_size_and_warns() -> None:
    request = img2img_request(png(1000, 750), width=512, height=512)
    async with render_stack() as stack:
        events = await collect(stack.stub, request)
    (result,) = of_kind(events, "result")
    assert (result.image.width, result.image.height) == (1000, 750)
    assert image_size(result.image.data) == (1000, 750)
    assert (result.render_width, result.render_height) == (1008, 752)
    assert "DIMENSIONS_IGNORED" in [w.code for w in of_kind(events, "warning")]


async def test_img2img_above_the_cap_renders_smaller_and_returns_the_source_size() -> None:
    request = img2img_request(png(3000, 2000))
    async with render_stack() as stack:
        events = await collect(stack.stub, request, deadline_s=40)
        (result,) = of_kind(events, "result")
        graph = graph_of(stack.comfy, result.prompt_id)
    assert result.render_width * result.render_height <= 2 * MEGAPIXEL
    assert result.render_width % 16 == 0 and result.render_height % 16 == 0
    assert image_size(result.image.data) == (3000, 2000)
    (scale,) = nodes_of(graph, "ImageScale")
    assert (scale["inputs"]["width"], scale["inputs"]["height"]) == (
        result.render_width,
        result.render_height,
    )


async def test_txt2img_snaps_the_requested_size_to_16() -> None:
    request = render_pb2.RenderRequest(
        positive_prompt="a lighthouse in fog",
        width=1000,
        height=600,
        settings=common_pb2.SamplerSettings(steps=2),
    )
    async with render_stack() as stack:
        events = await collect(stack.stub, request)
        (result,) = of_kind(events, "result")
        graph = graph_of(stack.comfy, result.prompt_id)
    assert (result.image.width, result.image.height) == (1008, 608)
    (latent,) = nodes_of(graph, "EmptySD3LatentImage")
    assert (latent["inputs"]["width"], latent["inputs"]["height"]) == (1008, 608)
    assert "DIMENSIONS_ADJUSTED" in [w.code for w in of_kind(events, "warning")]


async def test_variants_use_consecutive_seeds_and_one_reproduces_alone() -> None:
    source = png(128, 96)
    async with render_stack() as stack:
        events = await collect(stack.stub, img2img_request(source, seed=42, variants=3))
        results = sorted(of_kind(events, "result"), key=lambda r: r.index)
        alone = of_kind(await collect(stack.stub, img2img_request(source, seed=43)), "result")
        graphs = {r.seed: graph_of(stack.comfy, r.prompt_id) for r in results}
        alone_graph = graph_of(stack.comfy, alone[0].prompt_id)
    assert [r.seed for r in results] == [42, 43, 44]
    assert alone[0].seed == 43
    assert alone_graph == graphs[43]
    assert alone_graph != graphs[42]


async def test_each_result_carries_its_settings_and_a_parameters_chunk() -> None:
    request = img2img_request(png(160, 120), seed=7, variants=2)
    request.settings.denoise = 0.8
    async with render_stack() as stack:
        events = await collect(stack.stub, request)
    for result in of_kind(events, "result"):
        chunks = read_text_chunks(result.image.data)
        assert f"Seed: {result.seed}," in chunks[PARAMETERS_KEY]
        assert "Denoising strength: 0.8" in chunks[PARAMETERS_KEY]
        assert result.settings.steps == 4 and result.settings.sampler_name == "euler"
        assert abs(result.settings.denoise - 0.8) < 1e-6
        assert result.positive_prompt == "a red brick house at dusk"


async def test_provenance_and_the_resize_are_embedded_in_the_png() -> None:
    provenance = common_pb2.Provenance(
        instruction="перекрась стены в тёплый бежевый",
        plan=common_pb2.PromptPlan(positive_prompt="warm beige walls", model="gpt-oss"),
        request_id="req-1",
    )
    request = img2img_request(png(1000, 750), provenance=provenance)
    async with render_stack() as stack:
        (result,) = of_kind(await collect(stack.stub, request), "result")
    record = json.loads(read_text_chunks(result.image.data)[PROVENANCE_KEY])
    assert record["provenance"]["instruction"] == "перекрась стены в тёплый бежевый"
    assert record["provenance"]["plan"]["model"] == "gpt-oss"
    assert record["resize"] == {
        "source": {"width": 1000, "height": 750},
        "render": {"width": 1008, "height": 752},
        "output": {"width": 1000, "height": 750},
        "filter": "lanczos",
        "scaled_down_to_cap": False,
    }
    assert record["models"] == ["flux1-dev-fp8.safetensors"]


async def test_two_loras_and_a_canny_controlnet_are_accepted_by_comfyui() -> None:
    request = img2img_request(
        png(128, 128),
        loras=[
            common_pb2.LoraSpec(name="flux-realism-lora.safetensors", strength=0.8),
            common_pb2.LoraSpec(name="flux-lora-detailer.safetensors", strength=0.5),
        ],
        controlnet=common_pb2.ControlNetSpec(type=common_pb2.CONTROL_TYPE_CANNY, end_percent=0.8),
    )
    async with render_stack() as stack:
        (result,) = of_kind(await collect(stack.stub, request), "result")
        (submitted,) = stack.comfy.fake.submitted
    assert submitted.status == 200
    graph = submitted.body["prompt"]
    loras = nodes_of(graph, "LoraLoaderModelOnly")
    assert [n["inputs"]["lora_name"] for n in loras] == [
        "flux-realism-lora.safetensors",
        "flux-lora-detailer.safetensors",
    ]
    (union,) = nodes_of(graph, "SetUnionControlNetType")
    assert union["inputs"]["type"] == "openpose"  # Flux Union canny is mode 0
    (apply,) = nodes_of(graph, "ControlNetApplyAdvanced")
    assert apply["inputs"]["vae"] == ["1", 2]
    assert graph[apply["inputs"]["image"][0]]["class_type"] == "Canny"
    assert result.image.width == 128


async def test_unknown_lora_is_refused_listing_the_servers_loras_and_nothing_is_queued() -> None:
    request = img2img_request(loras=[common_pb2.LoraSpec(name="no-such-lora.safetensors")])
    async with render_stack() as stack:
        try:
            await collect(stack.stub, request)
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
        fake = stack.comfy.fake
        assert fake.counters.prompt_requests == 0
        assert fake.counters.uploads == 0
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no-such-lora.safetensors" in (error.details() or "")
    assert "flux-realism-lora.safetensors" in (error.details() or "")
    info = next(d for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo))
    assert info.reason == "LORA_NOT_FOUND"


def object_info_fetches(comfy: RunningFakeComfyUI) -> int:
    """How many full ``GET /object_info`` the stand-in answered (not ``/object_info/{class}``)."""
    return sum(1 for _, path, _ in comfy.fake.request_log if path.endswith("/object_info"))


async def test_a_lora_added_to_comfyui_after_a_refusal_is_found_without_a_restart() -> None:
    request = img2img_request(loras=[common_pb2.LoraSpec(name="fresh-lora.safetensors")])
    async with render_stack() as stack:
        fake = stack.comfy.fake
        try:
            await collect(stack.stub, request)
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
        queued_before = fake.counters.prompt_requests
        fake.set_model_files(loras=[*fake.settings.loras, "fresh-lora.safetensors"])
        fetches_before = object_info_fetches(stack.comfy)
        (result,) = of_kind(await collect(stack.stub, request), "result")
        fetches = object_info_fetches(stack.comfy) - fetches_before
        graph = graph_of(stack.comfy, result.prompt_id)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "fresh-lora.safetensors" in (error.details() or "")
    assert "flux-realism-lora.safetensors" in (error.details() or "")
    assert "flux-lora-detailer.safetensors" in (error.details() or "")
    assert queued_before == 0
    assert fetches == 1  # the kept list lacked the file: looked again once
    (lora,) = nodes_of(graph, "LoraLoaderModelOnly")
    assert lora["inputs"]["lora_name"] == "fresh-lora.safetensors"


async def test_unknown_workflow_is_refused_listing_the_available_ones() -> None:
    async with render_stack() as stack:
        try:
            await collect(stack.stub, img2img_request(workflow="flux-outpaint"))
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
        assert stack.comfy.fake.counters.uploads == 0
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "flux-img2img" in (error.details() or "")
    assert "flux-txt2img" in (error.details() or "")


async def test_an_unknown_sampler_is_an_invalid_argument_naming_the_field() -> None:
    request = img2img_request()
    request.settings.sampler_name = "euler_fancy"
    async with render_stack() as stack:
        try:
            await collect(stack.stub, request)
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = [d for d in status_details(error) if isinstance(d, error_details_pb2.BadRequest)]
    assert [v.field for v in bad.field_violations] == ["settings.sampler_name"]


async def test_two_backends_share_the_variants() -> None:
    async with render_stack(backends=2) as stack:
        events = await collect(stack.stub, img2img_request(variants=4, seed=1))
        urls = {c.url for c in stack.comfys}
    used = Counter(r.backend for r in of_kind(events, "result"))
    assert set(used) == urls
    assert sorted(used.values()) == [2, 2]


async def test_queued_events_report_real_positions_that_only_move_forward() -> None:
    comfy = fake_settings(step_delay_s=0.02)
    async with render_stack(comfy=comfy) as stack:
        events = await collect(stack.stub, img2img_request(variants=3, seed=5))
    positions: dict[int, list[int]] = {}
    for queued in of_kind(events, "queued"):
        positions.setdefault(queued.variant, []).append(queued.position)
    assert sorted(p[0] for p in positions.values()) == [0, 1, 2]
    for moves in positions.values():
        assert moves == sorted(moves, reverse=True)
    assert any(len(moves) > 1 for moves in positions.values())


async def test_progress_is_reported_per_variant_and_step() -> None:
    async with render_stack() as stack:
        events = await collect(stack.stub, img2img_request(variants=2, seed=3))
    steps = {(p.variant, p.step, p.total_steps) for p in of_kind(events, "progress")}
    assert steps == {(v, s, 4) for v in (0, 1) for s in (1, 2, 3, 4)}


async def test_previews_are_streamed_as_jpeg_when_asked() -> None:
    comfy = fake_settings(previews_enabled=True)
    async with render_stack(comfy=comfy) as stack:
        with_previews = await collect(stack.stub, img2img_request(previews=True))
        without = await collect(stack.stub, img2img_request(seed=9))
    previews = of_kind(with_previews, "preview")
    assert previews
    assert previews[0].image.mime_type == "image/jpeg"
    assert previews[0].image.data[:3] == b"\xff\xd8\xff"
    assert of_kind(without, "preview") == []


async def test_a_failing_node_is_reported_by_name() -> None:
    comfy = fake_settings()
    comfy.faults.execution_error_node = "VAEDecode"
    async with render_stack(comfy=comfy) as stack:
        try:
            await collect(stack.stub, img2img_request())
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
    assert error.code() == grpc.StatusCode.ABORTED
    assert "VAEDecode" in (error.details() or "")


async def test_out_of_memory_is_resource_exhausted() -> None:
    comfy = fake_settings()
    comfy.faults.oom_node = "KSampler"
    async with render_stack(comfy=comfy) as stack:
        try:
            await collect(stack.stub, img2img_request())
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "KSampler" in (error.details() or "")


async def test_a_websocket_drop_mid_render_still_delivers_the_result() -> None:
    comfy = fake_settings(step_delay_s=0.01)
    comfy.faults.ws_drop_after_step = 2
    async with render_stack(comfy=comfy) as stack:
        events = await collect(stack.stub, img2img_request(seed=11))
        drops = stack.comfy.fake.counters.ws_drops
    (result,) = of_kind(events, "result")
    assert result.seed == 11 and drops >= 1


async def test_an_unreachable_backend_is_unavailable() -> None:
    async with render_stack() as stack:
        await stack.comfy.stop()
        try:
            await collect(stack.stub, img2img_request())
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_500_from_comfyui_is_retried() -> None:
    comfy = fake_settings()
    comfy.faults.http_500_routes = ["POST /prompt"]
    comfy.faults.http_500_count = 1
    async with render_stack(comfy=comfy) as stack:
        (result,) = of_kind(await collect(stack.stub, img2img_request()), "result")
        accepted = [s for s in stack.comfy.fake.submitted if s.status == 200]
    assert [s.prompt_id for s in accepted] == [result.prompt_id]


async def test_the_source_is_uploaded_once_under_its_content_hash() -> None:
    source = png(64, 64, (1, 2, 3))
    async with render_stack() as stack:
        await collect(stack.stub, img2img_request(source, variants=3))
        uploads = stack.comfy.fake.upload_records
    (upload,) = uploads
    assert len(upload.name.split(".")[0]) == 64  # sha256 hex
    assert upload.subfolder == "imagegen"


async def test_a_given_control_image_is_uploaded_and_used_as_is() -> None:
    request = img2img_request(
        png(128, 96),
        controlnet=common_pb2.ControlNetSpec(
            type=common_pb2.CONTROL_TYPE_CANNY,
            control_image=common_pb2.Image(data=png(64, 48, (255, 255, 255))),
        ),
    )
    async with render_stack() as stack:
        (result,) = of_kind(await collect(stack.stub, request), "result")
        graph = graph_of(stack.comfy, result.prompt_id)
        uploads = len(stack.comfy.fake.upload_records)
    assert uploads == 2
    assert nodes_of(graph, "Canny") == []
    assert len(nodes_of(graph, "LoadImage")) == 2


async def test_the_service_is_serving_once_a_backend_has_the_checkpoint() -> None:
    async with render_stack(readiness_interval_s=0.1) as stack:
        health = health_pb2_grpc.HealthStub(stack.channel)
        call = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10)
        async for update in call:
            if update.status == health_pb2.HealthCheckResponse.SERVING:
                call.cancel()
                break
        answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_full_queue_takes_the_replica_out_of_rotation_but_keeps_the_service_serving() -> (
    None
):
    readiness = health_pb2.HealthCheckRequest(service=READINESS_SERVICE_NAME)
    service = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    request = img2img_request(variants=3, seed=5)
    request.settings.steps = 8
    async with render_stack(
        comfy=fake_settings(step_delay_s=0.05), max_pending_variants=3
    ) as stack:
        health = health_pb2_grpc.HealthStub(stack.channel)
        watch = health.Watch(readiness, timeout=20)
        seen = [(await watch.read()).status]
        while seen[-1] != serving:
            seen.append((await watch.read()).status)
        render = asyncio.create_task(collect(stack.stub, request))
        seen.append((await watch.read()).status)
        service_while_full = (await health.Check(service)).status
        seen.append((await watch.read()).status)
        results = of_kind(await render, "result")
        watch.cancel()
    # Three pending variants reach the cap: out of rotation until they finish; the
    # service's own name (what the gateway asks) stays SERVING throughout.
    assert seen[-3:] == [serving, not_serving, serving]
    assert service_while_full == serving
    assert len(results) == 3


async def test_a_backend_restart_that_loses_the_prompt_is_unavailable() -> None:
    comfy = fake_settings(step_delay_s=0.02)
    async with render_stack(comfy=comfy) as stack:
        request = img2img_request(seed=2)
        request.settings.steps = 100
        call = stack.stub.Render(request, timeout=20)
        try:
            async for event in call:
                if event.WhichOneof("event") == "progress":
                    await stack.comfy.restart()
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "lost" in (error.details() or "")


async def test_an_unknown_controlnet_is_refused_listing_the_servers_controlnets() -> None:
    request = img2img_request(
        controlnet=common_pb2.ControlNetSpec(
            type=common_pb2.CONTROL_TYPE_TILE, model="no-such-controlnet.safetensors"
        )
    )
    async with render_stack() as stack:
        try:
            await collect(stack.stub, request)
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
        assert stack.comfy.fake.counters.prompt_requests == 0
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "flux-union-controlnet-pro.safetensors" in (error.details() or "")
    info = next(d for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo))
    assert info.reason == "CONTROLNET_NOT_FOUND"


async def test_a_controlnet_added_to_comfyui_after_a_refusal_is_found_without_a_restart() -> None:
    request = img2img_request(
        controlnet=common_pb2.ControlNetSpec(
            type=common_pb2.CONTROL_TYPE_CANNY, model="fresh-canny-controlnet.safetensors"
        )
    )
    async with render_stack() as stack:
        fake = stack.comfy.fake
        try:
            await collect(stack.stub, request)
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
        queued_before = fake.counters.prompt_requests
        fake.set_model_files(
            controlnets=[*fake.settings.controlnets, "fresh-canny-controlnet.safetensors"]
        )
        (result,) = of_kind(await collect(stack.stub, request), "result")
        graph = graph_of(stack.comfy, result.prompt_id)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "flux-canny-controlnet-v3.safetensors" in (error.details() or "")
    assert "flux-union-controlnet-pro.safetensors" in (error.details() or "")
    assert queued_before == 0
    (loader,) = nodes_of(graph, "ControlNetLoader")
    assert loader["inputs"]["control_net_name"] == "fresh-canny-controlnet.safetensors"


async def test_a_backend_without_the_flux_checkpoint_is_a_failed_precondition() -> None:
    async with render_stack(comfy=fake_settings(checkpoints=["sdxl.safetensors"])) as stack:
        try:
            await collect(stack.stub, img2img_request())
            raise AssertionError("the render should fail")
        except grpc.aio.AioRpcError as e:
            error = e
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "flux1-dev-fp8.safetensors" in (error.details() or "")
    assert "sdxl.safetensors" in (error.details() or "")


async def test_the_catalog_reads_object_info_once_when_the_kontext_model_is_missing() -> None:
    async with render_stack() as stack:
        fetches_before = object_info_fetches(stack.comfy)
        answer = await stack.stub.GetCatalog(render_pb2.GetCatalogRequest())
        fetches = object_info_fetches(stack.comfy) - fetches_before
    (backend,) = answer.backends
    assert backend.reachable
    assert common_pb2.EDIT_MODE_KONTEXT not in backend.edit_modes
    assert common_pb2.EDIT_MODE_IMG2IMG in backend.edit_modes
    # Read afresh once; the missing Kontext model is not looked for a second time.
    assert fetches == 1
