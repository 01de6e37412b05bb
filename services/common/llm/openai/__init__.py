"""The OpenAI-compatible adapter of the chat-model protocol.

For vLLM, llama.cpp's server, LM Studio and Ollama's own ``/v1``.
"""

from services.common.llm.openai.client import RELEASE_UNSUPPORTED, OpenAICompatibleClient, to_openai

__all__ = ["RELEASE_UNSUPPORTED", "OpenAICompatibleClient", "to_openai"]
