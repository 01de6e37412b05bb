"""Service settings that make failure paths fast, shared by the reliability tests and the soak.

Each value is an environment variable the services' settings models read; the production
defaults are tuned for real GPUs (seconds between retries and polls).
"""

from __future__ import annotations

from services.planner.settings import PlannerSettings
from services.vision.settings import VisionSettings

__all__ = ["FAST_SERVICE_ENVIRONMENT", "PLANNER_MODEL", "VISION_MODEL"]

FAST_SERVICE_ENVIRONMENT: dict[str, str] = {
    # Model calls: three attempts, pauses of 10-20 ms, so a fallback comes quickly.
    "VISION_RETRY_INITIAL_BACKOFF_S": "0.01",
    "VISION_RETRY_MAX_BACKOFF_S": "0.02",
    "PLANNER_RETRY_INITIAL_BACKOFF_S": "0.01",
    "PLANNER_RETRY_MAX_BACKOFF_S": "0.02",
    # ComfyUI calls: same pauses; a dropped websocket reconnects within 0.1 s and the
    # render re-reads /queue and /history often, so lost events are noticed at once.
    "RENDER_RETRY_INITIAL_BACKOFF_S": "0.01",
    "RENDER_RETRY_MAX_BACKOFF_S": "0.05",
    "RENDER_RECONNECT_MAX_S": "0.1",
    "RENDER_QUEUE_POLL_INTERVAL_S": "0.05",
    "RENDER_HISTORY_POLL_INTERVAL_S": "0.1",
    "RENDER_CONNECT_TIMEOUT_S": "1",
    "RENDER_CANCEL_TIMEOUT_S": "3",
}

VISION_MODEL: str = VisionSettings.model_fields["model"].default
"""The Ollama model the vision service asks by default (``llava``)."""
PLANNER_MODEL: str = PlannerSettings.model_fields["model"].default
"""The Ollama model the planner asks by default (``gpt-oss:20b``)."""
