"""The language-model seam: a chat-model protocol and its adapters.

Vision and planner speak only this package's public surface; which server answers is a
setting (``*_LLM_BACKEND``)::

    model = connect(settings)  # Ollama's /api, or an OpenAI-compatible /v1
    reply = await call_model_with_retries(model, settings.chat_request(messages), parse, …)

| module | holds |
|---|---|
| :mod:`~services.common.llm.chat` | the protocol: requests, answers, :class:`ChatModel` |
| :mod:`~services.common.llm.errors` | backend-neutral errors and :func:`is_retryable` |
| :mod:`~services.common.llm.calls` | the retrying call and the missing-model status |
| :mod:`~services.common.llm.probe` | the readiness probe over the protocol |
| :mod:`~services.common.llm.settings` | the settings every model-backed service shares |
| :mod:`~services.common.llm.connect` | settings → adapter (the only place that names one) |
| :mod:`~services.common.llm.transport` | what the HTTP adapters share (pool, budgets, errors) |
| ``ollama/`` · ``openai/`` | the adapters (imported only by :func:`connect` and their tests) |
"""

from services.common.llm.calls import call_model_with_retries, model_not_found, release_model
from services.common.llm.chat import (
    ChatImage,
    ChatMessage,
    ChatModel,
    ChatRequest,
    ChatResponse,
    ModelInfo,
    Release,
    ThinkLevel,
)
from services.common.llm.connect import connect
from services.common.llm.errors import (
    ModelError,
    ModelNotFoundError,
    ModelRequestError,
    ModelServerHungError,
    ModelTimeoutError,
    ModelUnavailableError,
    UnusableAnswerError,
    is_retryable,
)
from services.common.llm.probe import ModelProbe, ModelState
from services.common.llm.settings import (
    Backend,
    ChatModelSettings,
    ContextWindow,
    ModelName,
    Temperature,
    TokenLimit,
)

__all__ = [
    "Backend",
    "ChatImage",
    "ChatMessage",
    "ChatModel",
    "ChatModelSettings",
    "ChatRequest",
    "ChatResponse",
    "ContextWindow",
    "ModelError",
    "ModelInfo",
    "ModelName",
    "ModelNotFoundError",
    "ModelProbe",
    "ModelRequestError",
    "ModelServerHungError",
    "ModelState",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "Release",
    "Temperature",
    "ThinkLevel",
    "TokenLimit",
    "UnusableAnswerError",
    "call_model_with_retries",
    "connect",
    "is_retryable",
    "model_not_found",
    "release_model",
]
