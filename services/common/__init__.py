"""What every imagegen server shares.

Settings (:mod:`.settings`), the domain errors and their gRPC statuses (:mod:`.errors`),
JSON logging with request ids (:mod:`.logs`), input image validation (:mod:`.images`),
retry with backoff (:mod:`.retry`), interceptors (:mod:`.interceptors`), the server
bootstrap (:mod:`.server`), client channels (:mod:`.channels`), Prometheus metrics
(:mod:`.metrics`) and the container health check (:mod:`.healthcheck`); the Flux-dev
sampler settings (:mod:`.sampler`) and the request rules the gateway and the render
service share (:mod:`.request_rules`).

The names below load their module on first use, so a process that needs one part (the
container health check runs every few seconds) does not import the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.common.channels import ClientKeepalive, ClientTLS, create_channel
    from services.common.errors import (
        BackendFailedError,
        BackendUnavailableError,
        DeadlineExceededError,
        DownstreamError,
        FailedPreconditionError,
        FieldViolation,
        ImagegenError,
        InvalidArgumentError,
        NotFoundError,
        PreconditionViolation,
        ResourceExhaustedError,
        abort,
        status_details,
        to_rpc_status,
    )
    from services.common.images import ValidatedImage, validate_image
    from services.common.interceptors import (
        REQUEST_ID_KEY,
        ServerInterceptor,
        request_id_client_interceptors,
    )
    from services.common.logs import configure_logging, get_logger, request_id_var
    from services.common.metrics import (
        BACKEND_CALLS_TOTAL,
        CACHE_EVENTS_TOTAL,
        COMFYUI_QUEUE_DEPTH,
        FALLBACKS_TOTAL,
        RPC_SECONDS,
        RPCS_IN_FLIGHT,
        STAGE_SECONDS,
        start_metrics_server,
    )
    from services.common.retry import RetryPolicy, deadline_from_context, remaining, retry_async
    from services.common.server import GrpcServer
    from services.common.settings import ServerSettings, settings_table

_HOMES: dict[str, str] = {
    "BACKEND_CALLS_TOTAL": "services.common.metrics",
    "CACHE_EVENTS_TOTAL": "services.common.metrics",
    "COMFYUI_QUEUE_DEPTH": "services.common.metrics",
    "FALLBACKS_TOTAL": "services.common.metrics",
    "REQUEST_ID_KEY": "services.common.interceptors",
    "RPCS_IN_FLIGHT": "services.common.metrics",
    "RPC_SECONDS": "services.common.metrics",
    "STAGE_SECONDS": "services.common.metrics",
    "BackendFailedError": "services.common.errors",
    "BackendUnavailableError": "services.common.errors",
    "ClientKeepalive": "services.common.channels",
    "ClientTLS": "services.common.channels",
    "DeadlineExceededError": "services.common.errors",
    "DownstreamError": "services.common.errors",
    "FailedPreconditionError": "services.common.errors",
    "FieldViolation": "services.common.errors",
    "GrpcServer": "services.common.server",
    "ImagegenError": "services.common.errors",
    "InvalidArgumentError": "services.common.errors",
    "NotFoundError": "services.common.errors",
    "PreconditionViolation": "services.common.errors",
    "ResourceExhaustedError": "services.common.errors",
    "RetryPolicy": "services.common.retry",
    "ServerInterceptor": "services.common.interceptors",
    "ServerSettings": "services.common.settings",
    "ValidatedImage": "services.common.images",
    "abort": "services.common.errors",
    "configure_logging": "services.common.logs",
    "create_channel": "services.common.channels",
    "deadline_from_context": "services.common.retry",
    "get_logger": "services.common.logs",
    "remaining": "services.common.retry",
    "request_id_client_interceptors": "services.common.interceptors",
    "request_id_var": "services.common.logs",
    "retry_async": "services.common.retry",
    "settings_table": "services.common.settings",
    "start_metrics_server": "services.common.metrics",
    "status_details": "services.common.errors",
    "to_rpc_status": "services.common.errors",
    "validate_image": "services.common.images",
}

__all__ = [
    "BACKEND_CALLS_TOTAL",
    "CACHE_EVENTS_TOTAL",
    "COMFYUI_QUEUE_DEPTH",
    "FALLBACKS_TOTAL",
    "REQUEST_ID_KEY",
    "RPCS_IN_FLIGHT",
    "RPC_SECONDS",
    "STAGE_SECONDS",
    "BackendFailedError",
    "BackendUnavailableError",
    "ClientKeepalive",
    "ClientTLS",
    "DeadlineExceededError",
    "DownstreamError",
    "FailedPreconditionError",
    "FieldViolation",
    "GrpcServer",
    "ImagegenError",
    "InvalidArgumentError",
    "NotFoundError",
    "PreconditionViolation",
    "ResourceExhaustedError",
    "RetryPolicy",
    "ServerInterceptor",
    "ServerSettings",
    "ValidatedImage",
    "abort",
    "configure_logging",
    "create_channel",
    "deadline_from_context",
    "get_logger",
    "remaining",
    "request_id_client_interceptors",
    "request_id_var",
    "retry_async",
    "settings_table",
    "start_metrics_server",
    "status_details",
    "to_rpc_status",
    "validate_image",
]


def __getattr__(name: str) -> Any:
    """Imports the module a public name lives in when the name is first used."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
