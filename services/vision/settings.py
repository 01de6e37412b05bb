"""Settings of the vision service, read from ``VISION_*`` environment variables at boot."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.llm import (
    ChatModelSettings,
    ContextWindow,
    ModelName,
    Temperature,
    TokenLimit,
)
from services.common.settings import MIB

__all__ = ["AnalysisPolicy", "VisionSettings"]


class AnalysisPolicy(StrEnum):
    """What to do when the vision model cannot give an analysis."""

    FALLBACK = "fallback"
    """Answer with an analysis measured from the image itself, flagged as a fallback."""
    REQUIRE_MODEL = "require_model"
    """Answer UNAVAILABLE: no generation without a real model analysis."""


class VisionSettings(ChatModelSettings):
    """Configuration of the vision service (``VISION_*``; shared limits ``IMAGEGEN_*``).

    The model call settings (``VISION_LLM_BACKEND``, ``VISION_LLM_URL``,
    ``VISION_OLLAMA_URL``, ``VISION_KEEP_ALIVE``, ``VISION_RETRY_ATTEMPTS`` …) come from
    :class:`ChatModelSettings`; only the defaults that suit a vision model are set here.
    """

    model_config = SettingsConfigDict(env_prefix="VISION_")

    port: int = Field(default=50052, ge=0, le=65535, description="gRPC port; 0 picks a free port.")

    model: ModelName = Field(
        default="llava",
        description=(
            "Vision model; on Ollama /api/show must list the `vision` capability, on an "
            "`openai` server it is the served model name."
        ),
    )
    num_ctx: ContextWindow = 4096
    # An analysis is a short JSON object, without thinking.
    num_predict: TokenLimit = Field(default=1024, ge=64)
    # Low: the analysis extracts what is in the image, it does not invent.
    temperature: Temperature = 0.1

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
    cache_bytes: int = Field(
        default=16 * MIB,
        ge=0,
        description="Memory for cached analyses, in bytes (least recently used go first); 0 = off.",
    )
    decode_budget_mb: int = Field(
        default=256,
        ge=16,
        description=(
            "Memory, in MiB, that decoded images may hold at once (a 4096×4096 PNG costs "
            "128 MiB while it is decoded; a JPEG is decoded at a reduced scale); requests "
            "beyond it wait `decode_wait_s`, then get RESOURCE_EXHAUSTED with a retry delay."
        ),
    )
    decode_wait_s: float = Field(
        default=2.0,
        ge=0.0,
        description="Longest wait for room in the decode budget before a request is refused.",
    )
    analysis_policy: AnalysisPolicy = Field(
        default=AnalysisPolicy.FALLBACK,
        description=(
            "`fallback`: analyse from the image itself when the model is unavailable; "
            "`require_model`: answer UNAVAILABLE instead."
        ),
    )

    @property
    def decode_budget_bytes(self) -> int:
        """``decode_budget_mb`` in bytes."""
        return self.decode_budget_mb * MIB
