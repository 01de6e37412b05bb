"""The one place that turns a service's settings into a model adapter.

Services call :func:`connect` and speak only the :class:`ChatModel` protocol afterwards;
no service module imports an adapter. The adapter's module is imported here, on first
use, so a process loads only the adapter it is configured for.
"""

from __future__ import annotations

from services.common.llm.chat import ChatModel
from services.common.llm.settings import ChatModelSettings

__all__ = ["connect"]


def connect(settings: ChatModelSettings, *, timeout_s: float | None = None) -> ChatModel:
    """Opens the adapter the settings choose (``llm_backend``), one pooled client.

    Args:
        settings: The service's settings.
        timeout_s: Default budget of one call; ``settings.call_timeout_s`` when None.

    Returns:
        The adapter, to be closed with ``aclose()`` when the server stops.
    """
    budget = settings.call_timeout_s if timeout_s is None else timeout_s
    if settings.llm_backend == "openai":
        from services.common.llm.openai import OpenAICompatibleClient

        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return OpenAICompatibleClient(settings.backend_url, api_key=key, timeout_s=budget)
    from services.common.llm.ollama import OllamaClient

    return OllamaClient(settings.backend_url, timeout_s=budget)
