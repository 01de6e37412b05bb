"""Settings of the planner service, read from ``PLANNER_*`` environment variables at boot."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.llm import (
    ChatModelSettings,
    ContextWindow,
    ModelName,
    Temperature,
    TokenLimit,
)
from services.common.settings import prompt_token_budget_field

__all__ = ["PlanPolicy", "PlannerSettings"]


class PlanPolicy(StrEnum):
    """What to do when the text model cannot give a plan."""

    RULES = "rules"
    """Answer with a plan made by the keyword rules, flagged ``PLAN_SOURCE_RULES``."""
    REQUIRE_MODEL = "require_model"
    """Answer UNAVAILABLE: no generation without a model-made plan."""


class PlannerSettings(ChatModelSettings):
    """Configuration of the planner service (``PLANNER_*``; shared limits ``IMAGEGEN_*``).

    The model call settings (``PLANNER_LLM_BACKEND``, ``PLANNER_LLM_URL``,
    ``PLANNER_OLLAMA_URL``, ``PLANNER_KEEP_ALIVE``, ``PLANNER_RETRY_ATTEMPTS`` …) come from
    :class:`ChatModelSettings`; only the defaults that suit a thinking text model are set
    here.
    """

    model_config = SettingsConfigDict(env_prefix="PLANNER_")

    port: int = Field(default=50053, ge=0, le=65535, description="gRPC port; 0 picks a free port.")

    model: ModelName = Field(
        default="gpt-oss:20b",
        description="Text model that plans prompts (its name on the model server).",
    )
    # Room for the system prompt, a long instruction and the analysis.
    num_ctx: ContextWindow = 8192
    # The thinking counts against num_predict: too few tokens leave no room for the plan.
    num_predict: TokenLimit = Field(default=3072, ge=256)
    temperature: Temperature = 0.6

    think: Literal["low", "medium", "high"] = Field(
        default="low",
        description=(
            "Thinking level sent to a thinking model (gpt-oss; `reasoning_effort` on an "
            "`openai` server). Never `false`: gpt-oss with `think: false` and a JSON schema "
            "answers with empty content. Not sent to models Ollama lists without the "
            "thinking capability."
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
    max_instruction_chars: int = Field(
        default=65536,
        ge=1,
        description="Longest accepted instruction, in characters (longer: INVALID_ARGUMENT).",
    )
    prompt_token_budget: int = prompt_token_budget_field()
    plan_policy: PlanPolicy = Field(
        default=PlanPolicy.RULES,
        description=(
            "`rules`: plan with the keyword rules when the model is unavailable or keeps "
            "answering invalid JSON; `require_model`: answer UNAVAILABLE instead."
        ),
    )
