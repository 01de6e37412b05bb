"""Whether the text model can be used: Ollama answers and ``/api/show`` knows the model.

The probe runs in the background (``GrpcServer.watch_readiness``). Its last answer also
steers requests: while Ollama does not answer, plans come from the rules at once instead
of after a round of retries against a dead server; and ``think`` is only sent to a model
that lists the ``thinking`` capability (any other model answers 400 to it).
"""

from __future__ import annotations

from services.common.ollama import OllamaClient
from services.common.ollama_probe import ModelProbe

__all__ = ["text_model_probe"]


def text_model_probe(client: OllamaClient, model: str) -> ModelProbe:
    """The probe of the text model: ready whenever Ollama knows it.

    No capability is required: any text model can plan, and ``thinking`` only decides
    whether ``think`` is sent (read through ``probe.has_capability("thinking")``).

    Args:
        client: The Ollama adapter.
        model: The text model's name.

    Returns:
        A probe not yet run; pass its ``check`` to ``GrpcServer.watch_readiness``.
    """
    return ModelProbe(client, model, label="text model")
