"""Assembly of the render server: ComfyUI backends, workflows, renderer, servicer, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from imagegen.render.v1 import render_pb2_grpc
from services.common.logs import get_logger
from services.common.retry import RetryPolicy
from services.common.server import GrpcServer
from services.render.backends import BackendPool
from services.render.comfyui import ComfyUIBackend, ComfyUIClient
from services.render.comfyui.reaper import WithdrawalReaper
from services.render.dimensions import Txt2ImgBounds
from services.render.instance import RenderInstance
from services.render.jobs import ControlKind, JobLimits
from services.render.renderer import Renderer, RendererConfig
from services.render.service import SERVICE_NAME, RenderServicer
from services.render.settings import RenderSettings
from services.render.workflows import DEFAULT_WORKFLOWS, WorkflowLibrary

__all__ = ["create_server", "renderer_config"]

_log = get_logger(__name__)


def renderer_config(settings: RenderSettings) -> RendererConfig:
    """The renderer's configuration from the service settings."""
    return RendererConfig(
        limits=JobLimits(
            max_variants=settings.max_variants,
            max_loras=settings.max_loras,
            max_prompt_chars=settings.max_prompt_chars,
            max_image_bytes=settings.max_image_bytes,
            max_image_side=settings.max_image_side,
            cap_mp=settings.max_megapixels,
            upscale_cap_mp=settings.upscale_max_megapixels,
            txt2img=Txt2ImgBounds(
                default_side=settings.txt2img_default_side,
                min_side=settings.txt2img_min_side,
                max_side=settings.txt2img_max_side,
                cap_mp=settings.max_megapixels,
            ),
            lora_strength_min=settings.lora_strength_min,
            lora_strength_max=settings.lora_strength_max,
        ),
        controlnet_models={
            ControlKind.CANNY: settings.controlnet_canny_model,
            ControlKind.DEPTH: settings.controlnet_depth_model,
            ControlKind.POSE: settings.controlnet_pose_model,
            ControlKind.TILE: settings.controlnet_tile_model,
        },
        union_marker=settings.controlnet_union_marker,
        canny_low=settings.canny_low_threshold,
        canny_high=settings.canny_high_threshold,
        preview_interval_s=1.0 / settings.preview_max_per_second,
        queue_poll_interval_s=settings.queue_poll_interval_s,
        history_poll_interval_s=settings.history_poll_interval_s,
        min_time_budget_s=settings.min_time_budget_s,
        render_timeout_s=settings.render_timeout_s,
        cancel_timeout_s=settings.cancel_timeout_s,
        upload_subfolder=settings.upload_subfolder,
        filename_prefix=settings.output_prefix,
        retry=_retry_policy(settings),
    )


def _watch_admission(host: GrpcServer, renderer: Renderer, cap: int) -> None:
    """Keeps the server admitting work while fewer than ``cap`` variants are pending.

    One task follows the count: each change wakes it and it publishes the latest state,
    so a burst of changes can never leave an older state published last.
    """
    changed = asyncio.Event()
    renderer.on_pending_change(changed.set)

    async def follow() -> None:
        while True:
            await changed.wait()
            changed.clear()
            pending = renderer.pending_variants
            await host.set_admitting(
                pending < cap, reason=f"{pending} variants pending (cap {cap})"
            )

    task = asyncio.get_running_loop().create_task(follow(), name="render-admission")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    host.on_stop(stop)


def _retry_policy(settings: RenderSettings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.retry_max_attempts,
        initial_backoff_s=settings.retry_initial_backoff_s,
        max_backoff_s=max(settings.retry_max_backoff_s, settings.retry_initial_backoff_s),
    )


def _comfyui_backend(
    url: str, client_id: str, instance: RenderInstance, settings: RenderSettings
) -> ComfyUIBackend:
    client = ComfyUIClient(
        url,
        client_id=client_id,
        request_timeout_s=settings.request_timeout_s,
        connect_timeout_s=settings.connect_timeout_s,
        retry=_retry_policy(settings),
        reconnect_max_s=settings.reconnect_max_s,
        catalog_max_age_s=settings.catalog_refresh_s,
    )
    reaper = WithdrawalReaper(
        client, bound_s=settings.withdrawal_bound_s, poll_s=settings.queue_poll_interval_s
    )
    return ComfyUIBackend(
        client,
        reaper=reaper,
        drain_s=settings.cancel_timeout_s,
        instance=instance,
        orphan_sweep_s=settings.orphan_sweep_interval_s,
    )


async def create_server(settings: RenderSettings) -> GrpcServer:
    """Builds the render server; the caller starts it (``await host.start()``).

    Opens one client (pooled HTTP + websocket) per ComfyUI backend, closed when the
    server stops. Readiness: SERVING while at least one backend answers
    ``/system_stats`` and lists the checkpoint(s) the default workflows load.

    Args:
        settings: The service's settings.

    Returns:
        The server, not started.

    Raises:
        FailedPreconditionError: A default workflow is missing or broken (fail at boot,
            not at the first request).
    """
    library = WorkflowLibrary(settings.workflows_path)
    required_models = sorted(
        {
            model
            for name in DEFAULT_WORKFLOWS.values()
            for model in library.get(name).required_models
        }
    )
    client_id = settings.client_id or f"imagegen-render-{uuid.uuid4().hex}"
    instance = RenderInstance.for_port(settings.instance_name, settings.port)
    backends = [
        _comfyui_backend(url, client_id, instance, settings) for url in settings.backend_urls
    ]
    pool = BackendPool(backends)
    pool.start()
    renderer = Renderer(pool, library, renderer_config(settings))

    host = GrpcServer(settings, service_names=[SERVICE_NAME])
    render_pb2_grpc.add_RenderServiceServicer_to_server(  # type: ignore[no-untyped-call]
        RenderServicer(renderer), host.server
    )
    host.on_stop(renderer.aclose)

    async def ready() -> bool:
        return await pool.any_ready(required_models)

    host.watch_readiness(ready, settings.readiness_interval_s)
    if settings.max_pending_variants > 0:
        _watch_admission(host, renderer, settings.max_pending_variants)
    _log.info(
        "render service assembled",
        extra={
            "backends": settings.backend_urls,
            "client_id": client_id,
            "instance": instance.name,
            "instance_start": instance.start_id,
            "workflows_dir": str(library.directory),
            "workflows": library.names(),
            "required_models": [m[2] for m in required_models],
        },
    )
    return host
