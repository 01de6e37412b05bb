"""Whether the text model can be used: its server answers and has the model.

The probe runs in the background (``GrpcServer.watch_readiness``). Its last answer also
steers requests: while the server does not answer, plans come from the rules at once
instead of after a round of retries against a dead server; and ``think`` is not sent to a
model Ollama says lacks the ``thinking`` capability (Ollama answers 400 to it). A server
that does not report capabilities (OpenAI-compatible) gets it as ``reasoning_effort``.
"""

from __future__ import annotations

from services.common.llm import ChatModel, ModelProbe

__all__ = ["text_model_probe"]


def text_model_probe(client: ChatModel, model: str) -> ModelProbe:
    """The probe of the text model: ready whenever its server has it.

    No capability is required: any text model can plan, and ``thinking`` only decides
    whether ``think`` is sent (read through ``probe.has_capability("thinking")``).

    Args:
        client: The model's adapter.
        model: The text model's name.

    Returns:
        A probe not yet run; pass its ``check`` to ``GrpcServer.watch_readiness``.
    """
    return ModelProbe(client, model, label="text model")
