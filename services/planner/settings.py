"""Settings of the planner service, read from ``PLANNER_*`` environment variables at boot."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.retry import RetryPolicy
from services.common.settings import ServerSettings

__all__ = ["PlanPolicy", "PlannerSettings"]


class PlanPolicy(StrEnum):
    """What to do when the text model cannot give a plan."""

    RULES = "rules"
    """Answer with a plan made by the keyword rules, flagged ``PLAN_SOURCE_RULES``."""
    REQUIRE_MODEL = "require_model"
    """Answer UNAVAILABLE: no generation without a model-made plan."""


class PlannerSettings(ServerSettings):
    """Configuration of the planner service (``PLANNER_*``; shared limits ``IMAGEGEN_*``)."""

    model_config = SettingsConfigDict(env_prefix="PLANNER_")

    port: int = Field(default=50053, ge=0, le=65535, description="gRPC port; 0 picks a free port.")

    ollama_url: str = Field(
        default="http://127.0.0.1:11434", description="Base URL of the Ollama server."
    )
    model: str = Field(
        default="gpt-oss:20b",
        min_length=1,
        description="Ollama text model that plans prompts (asked through /api/chat).",
    )
    think: Literal["low", "medium", "high"] = Field(
        default="low",
        description=(
            "Thinking level sent to a thinking model (gpt-oss). Never `false`: gpt-oss with "
            "`think: false` and a JSON schema answers with empty content. Not sent to "
            "models without the thinking capability."
        ),
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
        default=8192,
        ge=2048,
        description=(
            "Context window (a load-time option): sent identically on every call, since a "
            "change makes Ollama reload the model."
        ),
    )
    num_predict: int = Field(
        default=3072,
        ge=256,
        description=(
            "Most tokens generated per answer, thinking included; a reply cut off by it "
            "(`done_reason: length`) is retried."
        ),
    )
    temperature: float = Field(
        default=0.6, ge=0.0, le=2.0, description="Sampling temperature of the text model."
    )
    seed: int = Field(
        default=42,
        description=(
            "Sampling seed: the same request gives the same plan (it moves on after an "
            "invalid answer)."
        ),
    )
    model_instruction_chars: int = Field(
        default=4000,
        ge=200,
        description=(
            "Longest part of the instruction sent to the model, in characters (the rest is "
            "cut with a warning), so a huge instruction cannot push the answer out of num_ctx."
        ),
    )

    retry_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description=(
            "Model calls per plan before falling back (connect errors, timeouts, 5xx, "
            "cut-off and invalid answers are retried)."
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
        description="Budget of one model call, including a model load and the thinking.",
    )
    request_timeout_s: float = Field(
        default=180.0,
        gt=0.0,
        description=(
            "Budget of one plan (all calls and pauses) when the caller sets no deadline; "
            "the caller's deadline is used when it is shorter."
        ),
    )

    max_instruction_chars: int = Field(
        default=65536,
        ge=1,
        description="Longest accepted instruction, in characters (longer: INVALID_ARGUMENT).",
    )
    prompt_token_budget: int = Field(
        default=400,
        ge=16,
        le=512,
        description=(
            "Most CLIP tokens in a positive or negative prompt; longer prompts are cut at a "
            "sentence boundary with a warning. Flux-dev's T5 encoder was trained on 512 "
            "tokens and splits English a little finer than CLIP's BPE, hence the margin."
        ),
    )
    plan_policy: PlanPolicy = Field(
        default=PlanPolicy.RULES,
        description=(
            "`rules`: plan with the keyword rules when the model is unavailable or keeps "
            "answering invalid JSON; `require_model`: answer UNAVAILABLE instead."
        ),
    )
    readiness_interval_s: float = Field(
        default=15.0,
        gt=0.0,
        description="Seconds between checks that Ollama answers and /api/show knows the model.",
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
