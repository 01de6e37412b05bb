"""Settings of the vision service, read from ``VISION_*`` environment variables at boot."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.retry import RetryPolicy
from services.common.settings import MIB, ServerSettings

__all__ = ["AnalysisPolicy", "VisionSettings"]


class AnalysisPolicy(StrEnum):
    """What to do when the vision model cannot give an analysis."""

    FALLBACK = "fallback"
    """Answer with an analysis measured from the image itself, flagged as a fallback."""
    REQUIRE_MODEL = "require_model"
    """Answer UNAVAILABLE: no generation without a real model analysis."""


class VisionSettings(ServerSettings):
    """Configuration of the vision service (``VISION_*``; shared limits ``IMAGEGEN_*``)."""

    model_config = SettingsConfigDict(env_prefix="VISION_")

    port: int = Field(default=50052, ge=0, le=65535, description="gRPC port; 0 picks a free port.")

    ollama_url: str = Field(
        default="http://127.0.0.1:11434", description="Base URL of the Ollama server."
    )
    model: str = Field(
        default="llava",
        min_length=1,
        description="Ollama vision model; /api/show must list the `vision` capability.",
    )
    model_image_side: int = Field(
        default=672,
        ge=64,
        le=4096,
        description=(
            "Longest side, in pixels, of the copy sent to the model (LLaVA sees about "
            "336 px, so more only costs transfer time)."
        ),
    )
    jpeg_quality: int = Field(
        default=90, ge=50, le=100, description="JPEG quality of the copy sent to the model."
    )
    keep_alive: str = Field(
        default="10m",
        min_length=1,
        description=(
            "How long Ollama keeps the model loaded after a call (`10m`, `-1` forever, `0` "
            "unload at once to leave the GPU to ComfyUI)."
        ),
    )
    num_ctx: int = Field(
        default=4096,
        ge=2048,
        description=(
            "Context window (a load-time option): sent identically on every call, since a "
            "change makes Ollama reload the model."
        ),
    )
    num_predict: int = Field(
        default=1024, ge=64, description="Most tokens the model may generate per answer."
    )
    temperature: float = Field(
        default=0.1, ge=0.0, le=2.0, description="Sampling temperature; low for extraction."
    )
    seed: int = Field(
        default=42, description="Sampling seed: the same image gives the same analysis."
    )

    retry_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description=(
            "Model calls per question before giving up (connect errors, timeouts, 5xx "
            "and unreadable answers are retried)."
        ),
    )
    retry_initial_backoff_s: float = Field(
        default=0.25, ge=0.0, description="Pause before the first retry; doubles each time."
    )
    retry_max_backoff_s: float = Field(
        default=2.0, ge=0.0, description="Longest pause between two retries."
    )
    call_timeout_s: float = Field(
        default=120.0,
        gt=0.0,
        description="Budget of one model call, including a model load.",
    )
    request_timeout_s: float = Field(
        default=180.0,
        gt=0.0,
        description=(
            "Budget of one analysis (all calls and pauses) when the caller sets no deadline; "
            "the caller's deadline is used when it is shorter."
        ),
    )

    cache_bytes: int = Field(
        default=16 * MIB,
        ge=0,
        description="Memory for cached analyses, in bytes (least recently used go first); 0 = off.",
    )
    analysis_policy: AnalysisPolicy = Field(
        default=AnalysisPolicy.FALLBACK,
        description=(
            "`fallback`: analyse from the image itself when the model is unavailable; "
            "`require_model`: answer UNAVAILABLE instead."
        ),
    )
    readiness_interval_s: float = Field(
        default=15.0,
        gt=0.0,
        description="Seconds between checks that Ollama answers and the model has vision.",
    )

    def retry_policy(self) -> RetryPolicy:
        """The retry policy of model calls."""
        return RetryPolicy(
            max_attempts=self.retry_attempts,
            initial_backoff_s=self.retry_initial_backoff_s,
            max_backoff_s=max(self.retry_max_backoff_s, self.retry_initial_backoff_s),
        )

    def model_options(self) -> dict[str, Any]:
        """Ollama ``options`` of every call: pinned, so the model is never reloaded for them."""
        return {
            "num_ctx": self.num_ctx,
            "num_predict": self.num_predict,
            "temperature": self.temperature,
            "seed": self.seed,
        }
