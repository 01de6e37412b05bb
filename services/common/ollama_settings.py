"""Settings of a server that asks an Ollama model: where, which model, how, how patiently.

The vision and planner services both call a model through :mod:`services.common.ollama`
and tune those calls the same way; :class:`OllamaModelSettings` holds those fields once.
A service subclasses it with its own prefix, redeclares only the defaults that suit its
model, and adds its own fields::

    class VisionSettings(OllamaModelSettings):
        model_config = SettingsConfigDict(env_prefix="VISION_")

        model: OllamaModelName = Field(default="llava", description="Ollama vision model.")
        num_ctx: ContextWindow = 4096
        num_predict: TokenLimit = Field(default=1024, ge=64)
        temperature: Temperature = 0.1

so ``VISION_MODEL``, ``VISION_NUM_CTX`` … configure the vision service. A field redeclared
with one of the ``Annotated`` types below keeps the shared bounds and description (and
its place in the settings table); only the default changes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field

from services.common.ollama import ChatMessage, ChatRequest, ThinkLevel
from services.common.retry import RetryPolicy
from services.common.settings import ServerSettings

__all__ = [
    "ContextWindow",
    "OllamaModelName",
    "OllamaModelSettings",
    "Temperature",
    "TokenLimit",
]

OllamaModelName = Annotated[str, Field(min_length=1)]
"""An Ollama model name; each service describes what its model must be able to do."""

ContextWindow = Annotated[
    int,
    Field(
        ge=2048,
        description=(
            "Context window (a load-time option): sent identically on every call, since a "
            "change makes Ollama reload the model."
        ),
    ),
]
"""``num_ctx``; each service sets the default its prompts need."""

TokenLimit = Annotated[
    int,
    Field(
        description=(
            "Most tokens generated per answer, thinking included; an answer cut off by it "
            "(`done_reason: length`) is retried."
        ),
    ),
]
"""``num_predict``; each service sets the default and the lower bound its answers need."""

Temperature = Annotated[
    float, Field(ge=0.0, le=2.0, description="Sampling temperature of the model.")
]
"""``temperature``; low for extraction, higher for writing."""


class OllamaModelSettings(ServerSettings):
    """Configuration of a server whose requests are answered by an Ollama model.

    Not used on its own: ``model``, ``num_ctx``, ``num_predict`` and ``temperature`` have
    no default that suits every model, so each subclass declares them with the
    ``Annotated`` types of this module.
    """

    ollama_url: str = Field(
        default="http://127.0.0.1:11434", description="Base URL of the Ollama server."
    )
    model: OllamaModelName = Field(description="Ollama model asked through /api/chat.")
    keep_alive: str = Field(
        default="10m",
        min_length=1,
        description=(
            "How long Ollama keeps the model loaded after a call (`10m`, `-1` forever, `0` "
            "unload at once to leave the GPU to ComfyUI)."
        ),
    )
    num_ctx: ContextWindow
    num_predict: TokenLimit
    temperature: Temperature
    seed: int = Field(
        default=42,
        description=(
            "Sampling seed: the same request gives the same answer (it moves on after an "
            "unusable answer)."
        ),
    )

    retry_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description=(
            "Model calls per answer before giving up on the model (connect errors, "
            "timeouts, 5xx, cut-off and unusable answers are retried)."
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
        description="Budget of one model call, including a model load and any thinking.",
    )
    request_timeout_s: float = Field(
        default=180.0,
        gt=0.0,
        description=(
            "Budget of one request (all model calls and pauses) when the caller sets no "
            "deadline; the caller's deadline is used when it is shorter."
        ),
    )
    readiness_interval_s: float = Field(
        default=15.0,
        gt=0.0,
        description=(
            "Seconds between checks that Ollama answers and /api/show knows the model "
            "(with the capability the service needs)."
        ),
    )

    def retry_policy(self) -> RetryPolicy:
        """The retry policy of model calls."""
        return RetryPolicy(
            max_attempts=self.retry_attempts,
            initial_backoff_s=self.retry_initial_backoff_s,
            # A cap below the first pause would make the first pause the longest.
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

    def chat_request(
        self,
        messages: Sequence[ChatMessage],
        *,
        format: dict[str, Any] | None = None,
        think: ThinkLevel | None = None,
    ) -> ChatRequest:
        """A question to the configured model with the pinned options and ``keep_alive``.

        Args:
            messages: The chat so far, the question last.
            format: The JSON schema the answer must follow; None for free text.
            think: The thinking level; None leaves ``think`` out (a model without the
                thinking capability answers 400 to it).

        Returns:
            The request, its ``options["seed"]`` the configured seed.
        """
        return ChatRequest(
            model=self.model,
            messages=list(messages),
            format=format,
            options=self.model_options(),
            keep_alive=self.keep_alive,
            think=think,
        )

    def request_deadline(self, deadline: float | None) -> float:
        """The instant by which a request must be answered.

        Args:
            deadline: The caller's deadline as a ``time.monotonic()`` instant, or None
                when the caller set none.

        Returns:
            The caller's deadline, or now plus ``request_timeout_s`` when that is sooner
            (or the caller set no deadline).
        """
        local = time.monotonic() + self.request_timeout_s
        return local if deadline is None else min(deadline, local)
