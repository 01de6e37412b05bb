"""Whether the text model can be used: Ollama answers and ``/api/show`` knows the model.

The probe runs in the background (``GrpcServer.watch_readiness``). Its last answer also
steers requests: while Ollama does not answer, plans come from the rules at once instead
of after a round of retries against a dead server; and ``think`` is only sent to a model
that lists the ``thinking`` capability (any other model answers 400 to it).
"""

from __future__ import annotations

import logging
from enum import StrEnum

from services.common.logs import get_logger
from services.common.ollama import OllamaClient, OllamaError, OllamaModelNotFoundError

__all__ = ["ModelState", "TextModelProbe"]

_log = get_logger(__name__)

_PROBE_TIMEOUT_S = 5.0


class ModelState(StrEnum):
    """What the last probe found."""

    UNKNOWN = "unknown"
    """Not probed yet: requests try the model."""
    READY = "ready"
    """Ollama answers and knows the model."""
    OLLAMA_DOWN = "ollama_down"
    """Ollama did not answer: requests go to the rules."""
    MODEL_MISSING = "model_missing"
    """Ollama answers but the model is not pulled: requests fail FAILED_PRECONDITION."""


class TextModelProbe:
    """Probes Ollama for the text model and remembers the answer.

    Args:
        client: The Ollama adapter.
        model: The text model's name.

    Attributes:
        state: What the last probe found.
        reason: Why, in words (logged on every change).
        thinking: Whether the model has the ``thinking`` capability; None until known.
        server_version: Ollama's version, once read.
    """

    def __init__(self, client: OllamaClient, model: str) -> None:
        self._client = client
        self.model = model
        self.state = ModelState.UNKNOWN
        self.reason = "not probed yet"
        self.thinking: bool | None = None
        self.server_version = ""

    async def check(self) -> bool:
        """Probes once; True when the model is usable. Logs each change of state."""
        try:
            show = await self._client.show(self.model, timeout_s=_PROBE_TIMEOUT_S)
        except OllamaModelNotFoundError as exc:
            self._set(ModelState.MODEL_MISSING, exc.message)
        except OllamaError as exc:
            self._set(ModelState.OLLAMA_DOWN, f"Ollama does not answer: {exc.message}")
        else:
            self.thinking = show.has_capability("thinking")
            if not self.server_version:
                await self._log_version()
            capabilities = ", ".join(show.capabilities) or "none listed"
            self._set(ModelState.READY, f"{self.model} is available ({capabilities})")
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
                "text model %s",
                state.value,
                extra={"model": self.model, "reason": reason, "thinking": self.thinking},
            )
        self.state, self.reason = state, reason
