"""The OpenAI-compatible wire types the adapter reads: a chat completion and the model list.

Servers differ in what else they send (vLLM's ``stop_reason``, llama.cpp's ``timings``);
unknown fields are ignored. Reasoning text comes as ``reasoning`` (vLLM ≥ 0.10 — only this
name since early 2026 —, Ollama, LM Studio for gpt-oss) or ``reasoning_content``
(llama.cpp, older vLLM, LM Studio for DeepSeek-style models).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Choice", "Completion", "CompletionMessage", "ModelCard", "ModelList", "Usage"]


class CompletionMessage(BaseModel):
    """``choices[].message`` of a completion."""

    model_config = ConfigDict(extra="ignore")

    role: str = "assistant"
    content: str | None = None
    reasoning: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None

    @property
    def reasoning_text(self) -> str:
        """The reasoning under whichever name the server used; empty when none."""
        return self.reasoning or self.reasoning_content or ""


class Choice(BaseModel):
    """One of ``choices``."""

    model_config = ConfigDict(extra="ignore")

    index: int = 0
    message: CompletionMessage = Field(default_factory=CompletionMessage)
    finish_reason: str | None = None


class Usage(BaseModel):
    """Token counts of a completion."""

    model_config = ConfigDict(extra="ignore")

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Completion(BaseModel):
    """A non-streamed ``POST /v1/chat/completions`` answer."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    model: str = ""
    choices: list[Choice] = Field(default_factory=list)
    usage: Usage | None = None


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    model_config = ConfigDict(extra="ignore")

    id: str
    owned_by: str = ""
    aliases: list[str] = Field(default_factory=list)


class ModelList(BaseModel):
    """``GET /v1/models``."""

    model_config = ConfigDict(extra="ignore")

    data: list[ModelCard] = Field(default_factory=list)
