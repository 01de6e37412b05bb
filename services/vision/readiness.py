"""Whether the vision model can be used: its server answers and the model has vision.

A text-only model given an image does not always refuse it: Ollama drops the image and the
model describes something it never saw. So the service is ready only when the server lists
the ``vision`` capability (Ollama's ``/api/show``); until then requests get the fallback
analysis instead of an invented one. OpenAI-compatible servers do not report capabilities,
but they refuse an image sent to a text-only model (400 or 500), which ends in the fallback.
"""

from __future__ import annotations

from services.common.llm import ChatModel, ModelProbe

__all__ = ["vision_model_probe"]


def vision_model_probe(client: ChatModel, model: str) -> ModelProbe:
    """The probe of the vision model: ready only when it lists the ``vision`` capability.

    Args:
        client: The model's adapter.
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
