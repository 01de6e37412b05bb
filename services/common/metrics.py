"""Prometheus metrics shared by all imagegen services.

Defined once here so every service exports the same names and labels; a process serves
them on ``/metrics`` when its ``*_METRICS_PORT`` is set.

| metric                                | labels                   | what                          |
|---------------------------------------|--------------------------|-------------------------------|
| ``imagegen_rpc_seconds``              | service, method, code    | handled RPCs and their time   |
| ``imagegen_rpcs_in_flight``           | service, method          | RPCs being handled now        |
| ``imagegen_stage_seconds``            | service, stage           | time per pipeline stage       |
| ``imagegen_fallbacks_total``          | service, kind            | answers made by a fallback    |
| ``imagegen_cache_events_total``       | cache, result            | cache hits and misses         |
| ``imagegen_comfyui_queue_depth``      | backend                  | jobs waiting in ComfyUI       |
| ``imagegen_backend_calls_total``      | backend, outcome         | calls to Ollama / ComfyUI     |

``imagegen_rpcs_in_flight`` is the autoscaling signal of vision and planner (each
``AnalyzeImage`` / ``PlanPrompt`` in flight is a model call running or waiting for its
Ollama); render scales on its pending variants (:data:`RENDER_VARIANTS_PENDING_METRIC`,
else ``imagegen_comfyui_queue_depth``). ``deploy/kubernetes`` holds the scalers.

In ``imagegen_rpc_*`` the ``service`` label is the fully qualified gRPC service
(``imagegen.vision.v1.VisionService``); elsewhere it is the process's short name
(``vision``).
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BACKEND_CALLS_TOTAL",
    "CACHE_EVENTS_TOTAL",
    "COMFYUI_QUEUE_DEPTH",
    "FALLBACKS_TOTAL",
    "RENDER_VARIANTS_PENDING_METRIC",
    "RPCS_IN_FLIGHT",
    "RPC_SECONDS",
    "STAGE_SECONDS",
    "start_metrics_server",
]

# From a health check (milliseconds) to a long batch render (minutes).
_SECONDS_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

RPC_SECONDS = Histogram(
    "imagegen_rpc_seconds",
    "Handled gRPC calls by service, method and status code, and their duration.",
    ["service", "method", "code"],
    buckets=_SECONDS_BUCKETS,
)
RPCS_IN_FLIGHT = Gauge(
    "imagegen_rpcs_in_flight",
    "gRPC calls being handled now.",
    ["service", "method"],
)
STAGE_SECONDS = Histogram(
    "imagegen_stage_seconds",
    "Duration of a pipeline stage (analysis, planning, render, ...).",
    ["service", "stage"],
    buckets=_SECONDS_BUCKETS,
)
FALLBACKS_TOTAL = Counter(
    "imagegen_fallbacks_total",
    "Answers produced by a fallback instead of the model.",
    ["service", "kind"],
)
CACHE_EVENTS_TOTAL = Counter(
    "imagegen_cache_events_total",
    "Cache lookups by result (hit, miss, evict).",
    ["cache", "result"],
)
COMFYUI_QUEUE_DEPTH = Gauge(
    "imagegen_comfyui_queue_depth",
    "Jobs pending in a ComfyUI backend's queue.",
    ["backend"],
)
BACKEND_CALLS_TOTAL = Counter(
    "imagegen_backend_calls_total",
    "Calls to a backend (Ollama, ComfyUI) by outcome (ok, error, timeout, retry).",
    ["backend", "outcome"],
)

RENDER_VARIANTS_PENDING_METRIC = "imagegen_render_variants_pending"
"""Name of the gauge of variants one render replica has accepted and not yet finished
(waiting or sampling), the signal render autoscales on; exported by the render service
(``services/render/metrics.py``). The scaler's query falls back to
``imagegen_comfyui_queue_depth`` for replicas that do not export it."""


def start_metrics_server(port: int, *, addr: str = "0.0.0.0") -> None:
    """Serves the metrics on ``http://addr:port/metrics`` from a daemon thread.

    Args:
        port: TCP port.
        addr: Interface to bind.
    """
    prometheus_client.start_http_server(port, addr=addr)
