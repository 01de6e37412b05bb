"""Whether the vision model can be used: Ollama answers and the model has vision.

A text-only model given an image does not refuse it: Ollama drops the image and the model
describes something it never saw. So the service is ready only when ``/api/show`` lists
the ``vision`` capability; until then requests get the fallback analysis instead of an
invented one.
"""

from __future__ import annotations

from services.common.ollama import OllamaClient
from services.common.ollama_probe import ModelProbe

__all__ = ["vision_model_probe"]


def vision_model_probe(client: OllamaClient, model: str) -> ModelProbe:
    """The probe of the vision model: ready only when it lists the ``vision`` capability.

    Args:
        client: The Ollama adapter.
        model: The vision model's name.

    Returns:
        A probe not yet run; pass its ``check`` to ``GrpcServer.watch_readiness``.
    """
    return ModelProbe(
        client,
        model,
        required_capability="vision",
        label="vision model",
        consequence="images sent to it would be ignored",
    )
