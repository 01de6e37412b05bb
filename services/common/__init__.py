"""What every imagegen server shares.

Settings (:mod:`.settings`), the domain errors and their gRPC statuses (:mod:`.errors`),
JSON logging with request ids (:mod:`.logs`), input image validation (:mod:`.images`),
retry with backoff (:mod:`.retry`), interceptors (:mod:`.interceptors`), the server
bootstrap (:mod:`.server`), client channels (:mod:`.channels`), Prometheus metrics
(:mod:`.metrics`) and the container health check (:mod:`.healthcheck`); the Flux-dev
sampler settings (:mod:`.sampler`) and the request rules the gateway and the render
service share (:mod:`.request_rules`).
"""

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
