"""The Ollama adapter of the chat-model protocol (``/api/chat``, ``/api/show``, ``/api/ps``)."""

from services.common.llm.ollama.client import OllamaClient, to_ollama
from services.common.llm.ollama.wire import (
    LocalModel,
    ModelDetails,
    OllamaChatRequest,
    OllamaChatResponse,
    OllamaMessage,
    RunningModel,
    ShowResponse,
    normalize_model_name,
)

__all__ = [
    "LocalModel",
    "ModelDetails",
    "OllamaChatRequest",
    "OllamaChatResponse",
    "OllamaClient",
    "OllamaMessage",
    "RunningModel",
    "ShowResponse",
    "normalize_model_name",
    "to_ollama",
]
