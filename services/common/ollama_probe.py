"""Whether a service's Ollama model can be used: Ollama answers and ``/api/show`` knows it.

A service runs :meth:`ModelProbe.check` in the background (``GrpcServer.watch_readiness``)
and reads the last answer on each request, so it can go straight to its fallback while
Ollama is down instead of spending a round of retries against a dead server::

    probe = ModelProbe(client, "llava", required_capability="vision", label="vision model")
    host.watch_readiness(probe.check, settings.readiness_interval_s)
    ...
    if probe.state is ModelState.OLLAMA_DOWN:
        return fallback(probe.reason)
    probe.has_capability("thinking")  # None until the first probe has read /api/show

A model without a capability the service relies on is not refused by Ollama (a text
model given an image silently drops it), so such a model is reported as not ready.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from services.common.logs import get_logger
from services.common.ollama import (
    OllamaClient,
    OllamaError,
    OllamaModelNotFoundError,
    ShowResponse,
)

__all__ = ["PROBE_TIMEOUT_S", "ModelProbe", "ModelState"]

_log = get_logger(__name__)

PROBE_TIMEOUT_S = 5.0
"""Budget of each call of a probe: a live Ollama answers ``/api/show`` at once."""


class ModelState(StrEnum):
    """What the last probe found."""

    UNKNOWN = "unknown"
    """Not probed yet: requests try the model."""
    READY = "ready"
    """Ollama answers, knows the model, and the model has the required capability."""
    OLLAMA_DOWN = "ollama_down"
    """Ollama did not answer: requests go to the service's fallback."""
    MODEL_MISSING = "model_missing"
    """Ollama answers but the model is not pulled: requests fail FAILED_PRECONDITION."""
    LACKS_CAPABILITY = "lacks_capability"
    """The model exists but lacks the capability the service requires."""


class ModelProbe:
    """Probes Ollama for one model and remembers the answer.

    Args:
        client: The Ollama adapter.
        model: The model's name.
        required_capability: A capability ``/api/show`` must list ("vision", …) for the
            model to count as ready; None when any model Ollama knows will do.
        label: What the model is to the service, e.g. "vision model"; starts each log
            line about a change of state.
        consequence: What using the model without the required capability would do,
            appended to :attr:`reason` (which reaches callers in fallback warnings).

    Attributes:
        model: The model's name.
        state: What the last probe found.
        reason: Why, in words (logged on every change of state).
        server_version: Ollama's version, read once the model is first found ready.
    """

    def __init__(
        self,
        client: OllamaClient,
        model: str,
        required_capability: str | None = None,
        *,
        label: str = "model",
        consequence: str = "",
    ) -> None:
        self._client = client
        self._required = required_capability
        self._label = label
        self._consequence = consequence
        # Kept across failed probes: capabilities do not change while Ollama is down.
        self._show: ShowResponse | None = None
        self.model = model
        self.state = ModelState.UNKNOWN
        self.reason = "not probed yet"
        self.server_version = ""

    def has_capability(self, capability: str) -> bool | None:
        """Whether the model has ``capability``, as the last answered probe read it.

        Args:
            capability: A capability name, e.g. "thinking".

        Returns:
            None until a probe has read ``/api/show``; then whether the model has it.
        """
        if self._show is None:
            return None
        return self._show.has_capability(capability)

    async def check(self) -> bool:
        """Probes once; True when the model is usable. Logs each change of state."""
        try:
            show = await self._client.show(self.model, timeout_s=PROBE_TIMEOUT_S)
        except OllamaModelNotFoundError as exc:
            self._set(ModelState.MODEL_MISSING, exc.message)
        except OllamaError as exc:
            self._set(ModelState.OLLAMA_DOWN, f"Ollama does not answer: {exc.message}")
        else:
            self._show = show
            listed = ", ".join(show.capabilities) or "none listed"
            if self._required is None or show.has_capability(self._required):
                if not self.server_version:
                    await self._log_version()
                self._set(ModelState.READY, f"{self.model} is available ({listed})")
            else:
                reason = (
                    f"model {self.model!r} lacks the {self._required} capability "
                    f"(capabilities: {listed})"
                )
                if self._consequence:
                    reason += f"; {self._consequence}"
                self._set(ModelState.LACKS_CAPABILITY, reason)
        return self.state is ModelState.READY

    async def _log_version(self) -> None:
        try:
            self.server_version = await self._client.version(timeout_s=PROBE_TIMEOUT_S)
        except OllamaError:
            return
        _log.info(
            "ollama server",
            extra={"ollama_url": self._client.base_url, "ollama_version": self.server_version},
        )

    def _set(self, state: ModelState, reason: str) -> None:
        if state is not self.state:
            capabilities = None if self._show is None else list(self._show.capabilities)
            _log.log(
                logging.INFO if state is ModelState.READY else logging.WARNING,
                "%s %s",
                self._label,
                state.value,
                extra={"model": self.model, "reason": reason, "capabilities": capabilities},
            )
        self.state, self.reason = state, reason
