"""Whether the vision model can be used: Ollama answers and the model has vision.

A text-only model given an image does not refuse it: Ollama drops the image and the model
describes something it never saw. So the service is ready only when ``/api/show`` lists
the ``vision`` capability; until then requests get the fallback analysis instead of an
invented one.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from services.common.logs import get_logger
from services.common.ollama import OllamaClient, OllamaError, OllamaModelNotFoundError

__all__ = ["ModelState", "VisionModelProbe"]

_log = get_logger(__name__)

_PROBE_TIMEOUT_S = 5.0


class ModelState(StrEnum):
    """What the last probe found."""

    UNKNOWN = "unknown"
    """Not probed yet: requests try the model."""
    READY = "ready"
    """Ollama answers and the model has the vision capability."""
    OLLAMA_DOWN = "ollama_down"
    """Ollama did not answer."""
    MODEL_MISSING = "model_missing"
    """Ollama answers but the model is not pulled."""
    NO_VISION = "no_vision"
    """The model exists but cannot see images."""


class VisionModelProbe:
    """Probes Ollama for the vision model and remembers the answer.

    Pass :meth:`check` to ``GrpcServer.watch_readiness``; the analyzer reads
    :attr:`state` and :attr:`reason` to decide whether to ask the model at all.

    Args:
        client: The Ollama adapter.
        model: The vision model's name.
    """

    def __init__(self, client: OllamaClient, model: str) -> None:
        self._client = client
        self.model = model
        self.state = ModelState.UNKNOWN
        self.reason = "not probed yet"
        self.server_version = ""

    async def check(self) -> bool:
        """Probe once; True when the model is usable. Logs each change of state."""
        try:
            show = await self._client.show(self.model, timeout_s=_PROBE_TIMEOUT_S)
        except OllamaModelNotFoundError as exc:
            self._set(ModelState.MODEL_MISSING, exc.message)
        except OllamaError as exc:
            self._set(ModelState.OLLAMA_DOWN, f"Ollama does not answer: {exc.message}")
        else:
            if show.has_capability("vision"):
                if not self.server_version:
                    await self._log_version()
                self._set(ModelState.READY, f"{self.model} has the vision capability")
            else:
                listed = ", ".join(show.capabilities) or "none listed"
                self._set(
                    ModelState.NO_VISION,
                    f"model {self.model!r} lacks the vision capability (capabilities: "
                    f"{listed}); images sent to it would be ignored",
                )
        return self.state is ModelState.READY

    async def _log_version(self) -> None:
        try:
            self.server_version = await self._client.version(timeout_s=_PROBE_TIMEOUT_S)
        except OllamaError:
            return
        _log.info(
            "ollama server",
            extra={"ollama_url": self._client.base_url, "ollama_version": self.server_version},
        )

    def _set(self, state: ModelState, reason: str) -> None:
        if state is not self.state:
            _log.log(
                logging.INFO if state is ModelState.READY else logging.WARNING,
                "vision model %s",
                state.value,
                extra={"model": self.model, "reason": reason},
            )
        self.state, self.reason = state, reason
