"""Metrics of the render service (the shared ones are in :mod:`services.common.metrics`).

| metric                                          | labels  | what                            |
|-------------------------------------------------|---------|---------------------------------|
| ``imagegen_render_variants_pending``            |         | variants accepted, not finished |
| ``imagegen_render_prompts_awaiting_withdrawal`` | backend | withdrawn prompts still there   |
"""

from __future__ import annotations

from prometheus_client import Gauge

from services.common.metrics import RENDER_VARIANTS_PENDING_METRIC

__all__ = ["PROMPTS_AWAITING_WITHDRAWAL", "VARIANTS_PENDING"]

VARIANTS_PENDING = Gauge(
    RENDER_VARIANTS_PENDING_METRIC,
    "Variants this render process accepted and has not finished (waiting or sampling): "
    "the signal render autoscales on.",
)
PROMPTS_AWAITING_WITHDRAWAL = Gauge(
    "imagegen_render_prompts_awaiting_withdrawal",
    "Prompts withdrawn from a backend (cancel, deadline, failure, a gone instance) that it "
    "still holds; an interrupt takes effect only when the running node ends.",
    ["backend"],
)
