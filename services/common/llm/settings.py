"""Settings of a server that asks a language model: which server, which model, how patiently.

The vision and planner services both call a model through :mod:`services.common.llm` and
tune those calls the same way; :class:`ChatModelSettings` holds those fields once. A
service subclasses it with its own prefix, redeclares only the defaults that suit its
model, and adds its own fields::

    class VisionSettings(ChatModelSettings):
        model_config = SettingsConfigDict(env_prefix="VISION_")

        model: ModelName = Field(default="llava", description="The vision model.")
        num_ctx: ContextWindow = 4096
        num_predict: TokenLimit = Field(default=1024, ge=64)
        temperature: Temperature = 0.1

so ``VISION_LLM_BACKEND``, ``VISION_MODEL``, ``VISION_NUM_CTX`` … configure the vision
service. A field redeclared with one of the ``Annotated`` types below keeps the shared
bounds and description (and its place in the settings table); only the default changes.

| backend | ``*_LLM_URL`` | notes |
|---|---|---|
| ``ollama`` (default) | ``http://ollama:11434``; unset: ``*_OLLAMA_URL`` | every option applies |
| ``openai`` | the API root, ``http://vllm:8000/v1`` (required) | no ``num_ctx``, ``keep_alive`` |

An ``openai`` server may want ``*_LLM_API_KEY``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, model_validator

from services.common.llm.chat import ChatMessage, ChatRequest, ThinkLevel
from services.common.llm.context import fit_messages, input_budget
from services.common.retry import RetryPolicy
from services.common.settings import ServerSettings, env_name

__all__ = [
    "Backend",
    "ChatModelSettings",
    "ContextWindow",
    "ModelName",
    "Temperature",
    "TokenLimit",
]

Backend = Literal["ollama", "openai"]
"""The kinds of language-model server an adapter exists for."""

ModelName = Annotated[str, Field(min_length=1)]
"""A model name on its server; each service describes what its model must be able to do."""

ContextWindow = Annotated[
    int,
    Field(
        ge=2048,
        description=(
            "Context window (a load-time option): sent identically on every call, since a "
            "change makes Ollama reload the model. An `openai` server fixes it at start (vLLM "
            "--max-model-len, llama.cpp -c, Ollama's /v1 OLLAMA_CONTEXT_LENGTH)."
        ),
    ),
]
"""``num_ctx``; each service sets the default its prompts need."""

TokenLimit = Annotated[
    int,
    Field(
        description=(
            "Most tokens generated per answer, thinking included; an answer cut off by it "
            "(finish reason `length`) is retried."
        ),
    ),
]
"""``num_predict``; each service sets the default and the lower bound its answers need."""

Temperature = Annotated[
    float, Field(ge=0.0, le=2.0, description="Sampling temperature of the model.")
]
"""``temperature``; low for extraction, higher for writing."""


class ChatModelSettings(ServerSettings):
    """Configuration of a server whose requests are answered by a language model.

    Not used on its own: ``model``, ``num_ctx``, ``num_predict`` and ``temperature`` have
    no default that suits every model, so each subclass declares them with the
    ``Annotated`` types of this module.
    """

    llm_backend: Backend = Field(
        default="ollama",
        description=(
            "API of the model server: `ollama` (Ollama's /api) or `openai` (an "
            "OpenAI-compatible /v1/chat/completions: vLLM, llama.cpp server, LM Studio, "
            "Ollama's /v1)."
        ),
    )
    llm_url: str | None = Field(
        default=None,
        description=(
            "URL of the model server; for `openai` the API root with /v1 "
            "(`http://vllm:8000/v1`), required. Unset for `ollama`: the `*_OLLAMA_URL` value."
        ),
    )
    llm_api_key: SecretStr | None = Field(
        default=None,
        description="API key sent as a Bearer token to an `openai` server; unset sends none.",
    )
    ollama_url: str = Field(
        default="http://127.0.0.1:11434",
        description="Base URL of the Ollama server; used when `*_LLM_URL` is unset (`ollama`).",
    )
    model: ModelName = Field(description="The model's name on its server.")
    keep_alive: str = Field(
        default="10m",
        min_length=1,
        description=(
            "How long Ollama keeps the model loaded after a call (`10m`, `-1` forever, `0` "
            "unload at once to leave the GPU to ComfyUI); not sent to an `openai` server."
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
            "Seconds between checks that the model server answers and has the model "
            "(with the capability the service needs, where the server reports it)."
        ),
    )

    @model_validator(mode="after")
    def _openai_needs_a_url(self) -> Self:
        if self.llm_backend == "openai" and not self.llm_url:
            cls = type(self)
            raise ValueError(
                f"{env_name(cls, 'llm_url')} must be set (the API root, e.g. "
                f"http://vllm:8000/v1) when {env_name(cls, 'llm_backend')}=openai"
            )
        return self

    @property
    def backend_url(self) -> str:
        """Where the model server is: ``llm_url``, else ``ollama_url``."""
        return self.llm_url or self.ollama_url

    def retry_policy(self) -> RetryPolicy:
        """The retry policy of model calls."""
        return RetryPolicy(
            max_attempts=self.retry_attempts,
            initial_backoff_s=self.retry_initial_backoff_s,
            # A cap below the first pause would make the first pause the longest.
            max_backoff_s=max(self.retry_max_backoff_s, self.retry_initial_backoff_s),
        )

    def chat_request(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: Mapping[str, Any] | None = None,
        schema_name: str = "answer",
        think: ThinkLevel | None = None,
    ) -> ChatRequest:
        """A question to the configured model with the pinned options and ``keep_alive``.

        Every call carries the same context window, token limit, temperature and seed, so
        Ollama never reloads the model for a changed option. The messages' texts are cut to
        what fits the context window with the answer (``num_ctx`` less ``num_predict``);
        the request's ``cut`` says what was cut.

        Args:
            messages: The chat so far, the question last.
            json_schema: The JSON schema the answer must follow; None for free text.
            schema_name: The schema's name (OpenAI-compatible servers require one).
            think: The thinking level; None leaves it out (Ollama answers 400 to ``think``
                for a model without the thinking capability).

        Returns:
            The request, its ``seed`` the configured seed.
        """
        fitted, cut = fit_messages(tuple(messages), input_budget(self.num_ctx, self.num_predict))
        return ChatRequest(
            model=self.model,
            messages=fitted,
            json_schema=json_schema,
            schema_name=schema_name,
            temperature=self.temperature,
            seed=self.seed,
            max_tokens=self.num_predict,
            context_tokens=self.num_ctx,
            keep_alive=self.keep_alive,
            think=think,
            cut=cut,
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
