"""Assembly of the gateway server: downstream channels, scheduler, cache, servicer, health."""

from __future__ import annotations

from gateway.auth import auth_interceptors
from gateway.capabilities import Capabilities
from gateway.deadlines import StageBudgets
from gateway.downstream import Downstream
from gateway.operations.app import install_jobs
from gateway.operations.servicer import OPERATIONS_SERVICE
from gateway.orchestrator import Orchestrator, OrchestratorConfig
from gateway.readiness import DownstreamReadiness
from gateway.reuse import PlanReuseCache
from gateway.scheduler import EntryHook, PhaseGate, PhaseScheduler
from gateway.service import SERVICE_NAME, GatewayServicer
from gateway.settings import GatewaySettings
from gateway.validation import RequestLimits
from gateway.vram import GpuHandover
from imagegen.gateway.v1 import gateway_pb2_grpc
from services.common.server import GrpcServer

__all__ = ["create_server", "request_limits"]


def request_limits(settings: GatewaySettings) -> RequestLimits:
    """The bounds requests are checked against; the shared ones are the render's too."""
    return RequestLimits(
        max_variants=settings.max_variants,
        max_instruction_chars=settings.max_instruction_chars,
        max_loras=settings.max_loras,
        max_image_bytes=settings.max_image_bytes,
        max_image_side=settings.max_image_side,
        txt2img_min_side=settings.txt2img_min_side,
        txt2img_max_side=settings.txt2img_max_side,
        prompt_token_budget=settings.prompt_token_budget,
    )


def _phase_scheduler(
    settings: GatewaySettings, hooks: dict[str, EntryHook], host: GrpcServer
) -> PhaseGate:
    """This process's phase scheduler, or the one every replica shares through Redis
    (closed with ``host``)."""
    exclusive = {"render"} if settings.single_gpu else set()
    if settings.model_grouping and settings.grouping_store == "redis":
        # Imported here: only a gateway sharing phases through Redis loads the client.
        from gateway.shared_phases import SharedPhaseScheduler

        shared = SharedPhaseScheduler(
            settings.grouping_redis_url or settings.jobs_redis_url,
            prefix=settings.grouping_redis_prefix,
            max_wait_s=settings.grouping_max_wait_s,
            exclusive=exclusive,
            entry_hooks=hooks,
            lease_s=settings.grouping_lease_s,
        )
        host.on_stop(shared.close)
        return shared
    return PhaseScheduler(
        enabled=settings.model_grouping,
        max_wait_s=settings.grouping_max_wait_s,
        exclusive=exclusive,
        entry_hooks=hooks,
    )


async def create_server(settings: GatewaySettings) -> GrpcServer:
    """Builds the gateway server; the caller starts it (``await host.start()``).

    Opens one channel per downstream service (closed when the server stops); in
    single-GPU mode has vision and planner release their models before each render
    phase; installs caller authentication when a token file is configured; watches the
    downstream services' health.

    Args:
        settings: The gateway's settings.

    Returns:
        The server, not started.

    Raises:
        TokenFileError: The configured token file is missing or malformed.
    """
    downstream = Downstream.connect(
        vision_address=settings.vision_address,
        planner_address=settings.planner_address,
        render_address=settings.render_address,
        max_message_bytes=settings.max_message_bytes,
        tls=settings.downstream_tls(),
    )
    # Callers' tokens, rights and limits are checked before a request reaches the
    # servicer; with no token file configured there is no interceptor.
    host = GrpcServer(
        settings,
        service_names=[SERVICE_NAME, OPERATIONS_SERVICE],
        interceptors=auth_interceptors(settings),
    )
    host.on_stop(downstream.close)

    hooks: dict[str, EntryHook] = {}
    if settings.single_gpu:
        hooks["render"] = GpuHandover(downstream, timeout_s=settings.unload_timeout_s)
    scheduler = _phase_scheduler(settings, hooks, host)
    limits = request_limits(settings)
    capabilities = Capabilities(
        downstream,
        limits,
        ttl_s=settings.capabilities_ttl_s,
        timeout_s=settings.capabilities_timeout_s,
    )
    orchestrator = Orchestrator(
        downstream,
        config=OrchestratorConfig(
            limits=limits,
            budgets=StageBudgets(
                analyze=settings.analyze_budget_fraction, plan=settings.plan_budget_fraction
            ),
            default_deadline_s=settings.default_deadline_s,
            single_gpu=settings.single_gpu,
            kontext_recheck_s=settings.kontext_recheck_s,
            heartbeat_interval_s=settings.heartbeat_interval_s,
        ),
        scheduler=scheduler,
        reuse=PlanReuseCache(
            window_s=settings.plan_reuse_window_s, max_entries=settings.plan_reuse_max_entries
        ),
        capabilities=capabilities,
    )
    readiness = DownstreamReadiness(
        downstream, host.health, timeout_s=settings.health_check_timeout_s
    )
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(  # type: ignore[no-untyped-call]
        GatewayServicer(
            orchestrator,
            readiness=readiness,
            jobs=install_jobs(host, settings, orchestrator, limits),
            capabilities=capabilities,
        ),
        host.server,
    )
    host.watch_readiness(readiness.check, settings.health_poll_interval_s)
    return host
